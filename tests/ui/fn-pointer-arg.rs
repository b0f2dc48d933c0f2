use process_runtime::process_task;

#[process_task]
fn apply(f: fn(i64) -> i64, x: i64) -> i64 {
    f(x)
}

fn main() {}
