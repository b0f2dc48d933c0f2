use process_runtime::{Task, process_task};

#[process_task]
fn answer() -> u32 {
    42
}

fn main() {
    fn args_of<T: Task<Args = ()>>(_: T) {}
    args_of(answer);
    assert_eq!(answer.call(), 42);
}
