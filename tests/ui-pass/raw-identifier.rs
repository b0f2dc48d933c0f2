use process_runtime::{Task, process_task};

#[process_task]
fn r#move(r#type: u32) -> u32 {
    r#type * 2
}

fn main() {
    assert!(<r#move as Task>::NAME.ends_with("::move"));
    assert_eq!(r#move.call(2), 4);
}
