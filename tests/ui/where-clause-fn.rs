use process_runtime::process_task;

#[process_task]
fn add(a: i64, b: i64) -> i64
where
    i64: Copy,
{
    a + b
}

fn main() {}
