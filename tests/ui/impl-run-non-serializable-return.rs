use process_runtime::process_task;
use serde::{Deserialize, Serialize};

struct Summary {
    total: u32,
}

#[derive(Serialize, Deserialize)]
struct Worker {
    id: u32,
}

#[process_task]
impl Worker {
    fn run(self) -> Summary {
        Summary { total: self.id }
    }
}

fn main() {}
