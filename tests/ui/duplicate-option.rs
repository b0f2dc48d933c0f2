use process_runtime::process_task;

#[process_task(name = "jobs::add", name = "jobs::sum")]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {}
