use process_runtime::process_task;
use serde::{Deserialize, Serialize};

trait Job {
    fn run(self) -> u32;
}

#[derive(Serialize, Deserialize)]
struct Worker {
    id: u32,
}

#[process_task]
impl Job for Worker {
    fn run(self) -> u32 {
        self.id
    }
}

fn main() {}
