//! 进程池 — non-blocking submission: `Pool(4)` and `apply_async`.
//!
//! Ports seed 004's `pool.apply_async(test, (i, ))` program: ten tasks go to a pool of four
//! worker processes at once, without waiting. The four workers take the first four tasks; each
//! time one finishes, its worker takes the next. So at most four tasks run at any moment, and
//! the start and end lines of different tasks interleave as the OS schedules them.
//!
//! `close` says no more tasks will come; `join` waits until the workers have done them all. No
//! process is started per task: the same four workers run all ten.
//!
//! Run it with `cargo run --example pool`.

use std::thread::sleep;
use std::time::Duration;

use process_runtime::prelude::*;

#[process_task]
fn test(num: u32) {
    println!("开始执行任务{num}");
    sleep(Duration::from_millis(100));
    println!("结束执行任务{num}");
}

fn main() -> Result<(), process_runtime::Error> {
    let pool = Pool::new(4)?;
    for i in 0..10 {
        // 向进程池添加任务, 非阻塞方式: returns at once. The task returns nothing, so its
        // AsyncResult is not kept.
        let _ = pool.apply_async(test, i)?;
    }
    pool.close(); // 关闭进程池,不再接收新的任务
    pool.join()?; // 回收进程池资源: waits for all ten
    Ok(())
}
