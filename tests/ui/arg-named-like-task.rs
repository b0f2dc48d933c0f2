use process_runtime::process_task;

#[process_task]
fn count(count: u32) -> u32 {
    count + 1
}

fn main() {}
