mod jobs {
    use process_runtime::process_task;

    #[process_task]
    pub fn add(a: i64, b: i64) -> i64 {
        a + b
    }
}

mod user {
    use crate::jobs::add;

    pub fn twelve() -> i64 {
        let _spawn = add::spawn;
        add.call(5, 7)
    }
}

fn main() {
    assert_eq!(user::twelve(), 12);
}
