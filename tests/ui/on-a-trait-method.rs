use process_runtime::process_task;

trait Job {
    #[process_task]
    fn run(self) -> u32;
}

fn main() {}
