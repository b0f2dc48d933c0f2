use process_runtime::process_task;
use std::rc::Rc;

#[process_task]
fn total(values: Rc<Vec<u32>>) -> u32 {
    values.iter().sum()
}

fn main() {}
