use process_runtime::process_task;

#[process_task]
struct Worker {
    id: u32,
}

fn main() {}
