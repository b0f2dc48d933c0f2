use process_runtime::{Task, process_task};

#[process_task]
fn describe(name: String, age: u8, tags: Vec<String>, score: f64) -> String {
    format!("{name} {age} {} {score}", tags.join(","))
}

fn main() {
    fn args_of<T: Task<Args = (String, u8, Vec<String>, f64), Output = String>>(_: T) {}
    args_of(describe);
    assert_eq!(
        describe.call("neo".into(), 30, vec!["a".into(), "b".into()], 1.5),
        "neo 30 a,b 1.5"
    );
}
