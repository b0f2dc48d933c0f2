use process_runtime::process_task;

#[process_task]
fn show(value: impl std::fmt::Display) -> String {
    value.to_string()
}

fn main() {}
