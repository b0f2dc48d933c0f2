//! 阻塞添加任务-进程池 — blocking submission: `Pool(4)` and `apply`.
//!
//! Ports seed 004's `pool.apply(test, (i, ))` program. `apply` waits for its task to finish
//! before it returns, so although the pool has four workers, the tasks run one after the other:
//! every task's end line comes before the next task's start line. Compare `pool`, where
//! `apply_async` lets four run at once.
//!
//! Run it with `cargo run --example pool_apply`.

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
        pool.apply(test, i)?; // 向进程池添加任务, 阻塞方式
    }
    pool.close(); // 关闭进程池,不再接收新的任务
    pool.join()?; // 回收进程池资源
    Ok(())
}
