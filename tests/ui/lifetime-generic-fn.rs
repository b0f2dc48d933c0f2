use process_runtime::process_task;

#[process_task]
fn longest<'a>(a: String, b: String) -> String {
    if a.len() >= b.len() { a } else { b }
}

fn main() {}
