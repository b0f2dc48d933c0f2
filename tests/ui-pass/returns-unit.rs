use process_runtime::{Task, process_task};

#[process_task]
fn hello(name: String) {
    assert!(!name.is_empty());
}

#[process_task]
fn explicit_unit(name: String) -> () {
    assert!(!name.is_empty());
}

fn main() {
    fn output_of<T: Task<Output = ()>>(_: T) {}
    output_of(hello);
    output_of(explicit_unit);
    hello.call("world".to_string());
    explicit_unit.call("world".to_string());
}
