use process_runtime::process_task;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Worker {
    id: u32,
}

#[process_task]
impl Worker {
    fn run(&self) -> u32 {
        self.id
    }
}

fn main() {}
