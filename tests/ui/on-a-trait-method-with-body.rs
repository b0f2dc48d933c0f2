use process_runtime::process_task;

trait Job: Sized {
    #[process_task]
    fn run(self) -> u32 {
        7
    }
}

fn main() {}
