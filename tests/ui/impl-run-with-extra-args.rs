use process_runtime::process_task;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Worker {
    id: u32,
}

#[process_task]
impl Worker {
    fn run(self, offset: u32) -> u32 {
        self.id + offset
    }
}

fn main() {}
