use process_runtime::process_task;

#[process_task]
fn zeros<const N: usize>() -> Vec<u8> {
    vec![0; N]
}

fn main() {}
