use process_runtime::{Task, process_task};

mod jobs {
    use super::process_task;

    #[process_task]
    pub fn add(a: i64, b: i64) -> i64 {
        a + b
    }
}

fn main() {
    assert!(<jobs::add as Task>::NAME.ends_with("::jobs::add"));
}
