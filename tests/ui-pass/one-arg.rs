use process_runtime::{Task, process_task};

#[process_task]
fn double(x: u64) -> u64 {
    x * 2
}

fn main() {
    fn args_of<T: Task<Args = u64, Output = u64>>(_: T) {}
    args_of(double);
    assert_eq!(double.call(21), 42);
}
