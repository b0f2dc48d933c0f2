use process_runtime::process_task;

struct Counter {
    count: u64,
}

impl Counter {
    #[process_task]
    fn get(&self) -> u64 {
        self.count
    }
}

fn main() {}
