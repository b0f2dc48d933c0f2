use process_runtime::process_task;

#[process_task]
fn fib(n: u64) -> u64 {
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

fn main() {
    assert_eq!(fib.call(10), 55);
}
