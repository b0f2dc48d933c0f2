use process_runtime::process_task;

#[process_task]
fn first<T>(items: Vec<T>) -> Option<T> {
    items.into_iter().next()
}

fn main() {}
