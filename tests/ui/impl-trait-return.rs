use process_runtime::process_task;

#[process_task]
fn numbers(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

fn main() {}
