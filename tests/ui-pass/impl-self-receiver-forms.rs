use process_runtime::{Task, process_task};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Counter {
    count: u32,
}

#[process_task]
impl Counter {
    fn run(mut self) -> Self {
        self.count += 1;
        self
    }
}

#[derive(Serialize, Deserialize)]
struct Explicit(u32);

#[process_task]
impl Explicit {
    fn run(self: Self) -> Option<Self> {
        Some(self)
    }
}

fn main() {
    fn output_of<T: Task<Output = O>, O>(_: &T) {}
    let counter = Counter { count: 1 };
    output_of::<Counter, Counter>(&counter);
    assert_eq!(Task::run(counter, ()).count, 2);
    assert_eq!(Task::run(Explicit(3), ()).map(|e| e.0), Some(3));
}
