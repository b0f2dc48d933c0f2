use process_runtime::process_task;

fn main() {
    #[process_task]
    fn add(a: i64, b: i64) -> i64 {
        a + b
    }

    assert_eq!(add.call(5, 7), 12);
}
