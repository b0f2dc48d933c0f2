use process_runtime::process_task;

struct Worker {
    id: u32,
}

#[process_task]
impl Worker {
    fn run(self) -> Self {
        Worker { id: self.id + 1 }
    }
}

fn main() {}
