use process_runtime::process_task;

struct Report {
    lines: usize,
}

#[process_task]
fn count(text: String) -> Report {
    Report {
        lines: text.lines().count(),
    }
}

fn main() {}
