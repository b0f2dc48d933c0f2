use process_runtime::process_task;

#[process_task]
fn shout(text: Strng) -> String {
    text.to_uppercase()
}

fn main() {}
