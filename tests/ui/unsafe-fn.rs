use process_runtime::process_task;

#[process_task]
unsafe fn peek(address: usize) -> u8 {
    address as u8
}

fn main() {}
