use process_runtime::process_task;

#[process_task]
fn double(x: _) -> u32 {
    x * 2
}

fn main() {}
