use process_runtime::process_task;

#[process_task]
unsafe extern "C" fn sum(count: usize, args: ...) -> usize {
    count
}

fn main() {}
