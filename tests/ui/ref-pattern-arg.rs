use process_runtime::process_task;

#[process_task]
fn greet(ref name: String) -> usize {
    name.len()
}

fn main() {}
