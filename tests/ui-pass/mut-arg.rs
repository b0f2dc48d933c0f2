use process_runtime::process_task;

#[process_task]
fn sorted(mut items: Vec<i32>) -> Vec<i32> {
    items.sort();
    items
}

fn main() {
    assert_eq!(sorted.call(vec![3, 1, 2]), vec![1, 2, 3]);
}
