use process_runtime::process_task;

#[process_task]
trait Job {
    fn run(self) -> u32;
}

fn main() {}
