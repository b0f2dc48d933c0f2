use process_runtime::process_task;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Worker<T> {
    item: T,
}

#[process_task]
impl<T> Worker<T> {
    fn run(self) -> T {
        self.item
    }
}

fn main() {}
