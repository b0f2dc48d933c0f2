use process_runtime::{Task, process_task};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Worker {
    id: u32,
}

#[process_task]
impl Worker {
    fn new(id: u32) -> Self {
        Worker { id }
    }

    fn label(&self) -> String {
        format!("worker-{}", self.id)
    }

    fn run(self) -> String {
        self.label()
    }
}

fn main() {
    fn task_of<T: Task<Args = (), Output = String>>(_: &T) {}
    let worker = Worker::new(3);
    task_of(&worker);
    assert_eq!(Task::run(worker, ()), "worker-3");
    let _ = Worker::spawn;
}
