use process_runtime::process_task;

#[process_task]
fn greeting() -> &'static str {
    "hello"
}

fn main() {}
