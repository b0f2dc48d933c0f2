use process_runtime::process_task;

#[process_task]
fn shout(text: &str) -> String {
    text.to_uppercase()
}

fn main() {}
