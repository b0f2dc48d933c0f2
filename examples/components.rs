//! 进程间通信与同步 — `Queue`, `Pipe` and `Lock` together: cooks, eaters and a bookkeeper.
//!
//! Seed 001 says that `multiprocessing` "提供了Process、Queue、Pipe、Lock等组件", and stresses
//! that "进程没有任何共享状态": what one process changes stays in that process. To work
//! together, processes need objects made to be shared, passed to them as arguments:
//!
//! - a `Queue` carries the 包子 from two cooks (producers) to two eaters (consumers). It is
//!   bounded to two items, so a cook waits when the counter is full. Each eater stops at `None`,
//!   the "closing time" the main process puts once the cooks are done: one for each eater;
//! - a `Lock` lets one process at a time print: an eater prints "拿到了" and, a little later,
//!   "吃完了", and no other process's line can come between the two. Without the lock they would
//!   interleave. (Seed 001 warns that terminating a process that holds a lock deadlocks the
//!   others; here the next process to take it is told instead: see `Lock`'s documentation);
//! - a `Pipe` connects the main process and a bookkeeper, both ways: the main process sends
//!   what each eater ate, the bookkeeper sends back the total.
//!
//! Which eater gets which 包子 is the operating system's choice; that every 包子 is made once
//! and eaten once, and that an eater's two lines stay together, is not.
//!
//! Run it with `cargo run --example components`.

use std::thread::sleep;
use std::time::Duration;

use process_runtime::prelude::*;
use serde::{Deserialize, Serialize};

/// What goes through the pipe between the main process and the bookkeeper.
#[derive(Debug, Serialize, Deserialize)]
enum Ledger {
    /// An eater and how many it ate.
    Ate(String, u32),
    /// No more entries.
    Done,
    /// The bookkeeper's answer: the total.
    Total(u32),
}

// 生产者: makes `count` 包子 and puts them on the counter (the queue).
#[process_task]
fn cook(name: String, count: u32, counter: Queue<Option<String>>, print: Lock) {
    for i in 1..=count {
        let baozi = format!("包子{}{i}", name.trim_start_matches("厨师"));
        {
            let _print = print.acquire().expect("the print lock");
            println!("{name} 做好了 {baozi}");
        }
        counter.put(Some(baozi)).expect("put it on the counter"); // 满了就等
    }
}

// 消费者: eats until closing time (`None`); returns how many it ate.
#[process_task]
fn eater(name: String, counter: Queue<Option<String>>, print: Lock) -> u32 {
    let mut eaten = 0;
    while let Some(baozi) = counter.get().expect("take from the counter") {
        // 加锁: the two lines of one eater stay together.
        let _print = print.acquire().expect("the print lock");
        println!("{name} 拿到了 {baozi}");
        sleep(Duration::from_millis(20));
        println!("{name} 吃完了 {baozi}");
        eaten += 1;
    }
    let _print = print.acquire().expect("the print lock");
    println!("{name} 吃饱了, 一共吃了 {eaten} 个");
    eaten
}

// 记账: adds up what the main process sends through its end of the pipe, and sends back the total.
#[process_task]
fn bookkeeper(pipe: Connection<Ledger>) {
    let mut total = 0;
    // Until `Done`.
    while let Ledger::Ate(name, count) = pipe.recv().expect("receive an entry") {
        println!("记账: {name} 吃了 {count} 个");
        total += count;
    }
    pipe.send(Ledger::Total(total)).expect("send the total");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let counter = Queue::bounded(2)?; // 最多放两个包子
    let print = Lock::new()?;
    let (mine, books) = pipe()?;

    let keeper = bookkeeper.spawn(books)?;
    let eaters = ["吃货1", "吃货2"]
        .into_iter()
        .map(|name| eater.spawn(name.to_string(), counter.clone(), print.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let cooks = ["厨师A", "厨师B"]
        .into_iter()
        .map(|name| cook.spawn(name.to_string(), 3, counter.clone(), print.clone()))
        .collect::<Result<Vec<_>, _>>()?;

    for p in cooks {
        p.join()?;
    }
    for _ in &eaters {
        counter.put(None)?; // 下班了: one closing time for each eater
    }
    let counts = eaters
        .into_iter()
        .map(|p| p.join())
        .collect::<Result<Vec<u32>, _>>()?;
    // Every eater is done: the bookkeeper's lines cannot come between an eater's.
    for (name, count) in ["吃货1", "吃货2"].into_iter().zip(counts) {
        mine.send(Ledger::Ate(name.to_string(), count))?;
    }
    mine.send(Ledger::Done)?;
    if let Ledger::Total(total) = mine.recv()? {
        println!("主进程: 记账进程说一共吃了 {total} 个包子");
    }
    keeper.join()?;
    Ok(())
}
