use process_runtime::process_task;

#[process_task]
fn serve(port: u16) -> ! {
    loop {
        let _ = port;
    }
}

fn main() {}
