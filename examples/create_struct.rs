//! 自定义一个类，并继承Process — the "subclass `Process` and override `run`" style.
//!
//! Ports the class programs of four tutorials, one after the other: `MyProcess` of seed 000 (no
//! fields), `MyProcess` of seed 001 方式二 (a `name` field), `Test` of seed 002 (a `sex` field)
//! and `process_fun` of seed 004 继承Process (`args` and `kwargs` fields).
//!
//! In Rust the class is a struct that derives `Serialize` and `Deserialize`, its fields are what
//! `__init__` stored on `self`, and `#[process_task]` on its `impl` block makes `run(self)` the
//! task. `MyProcess { .. }.spawn()` is Python's `MyProcess(..).start()`: the struct is sent to a
//! child process, which calls `run` on it. There is no `super().__init__()` to forget.
//!
//! Run it with `cargo run --example create_struct`.

use std::collections::BTreeMap;
use std::thread::sleep;
use std::time::Duration;

use process_runtime::prelude::*;
use serde::{Deserialize, Serialize};

// Each tutorial calls its class `MyProcess` or `process_fun`; a module per tutorial keeps the
// names apart.
mod seed_000 {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub struct MyProcess;

    #[process_task]
    impl MyProcess {
        // 父类方法
        pub fn run(self) {
            println!("开始执行任务");
            sleep(Duration::from_secs(1));
            println!("结束执行任务");
        }
    }
}

mod seed_001 {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub struct MyProcess {
        pub name: String,
    }

    #[process_task]
    impl MyProcess {
        pub fn run(self) {
            println!("{} is running", self.name);
            sleep(Duration::from_secs(2));
            println!("{} is gone", self.name);
        }
    }
}

mod seed_002 {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub struct Test {
        pub sex: String,
    }

    #[process_task]
    impl Test {
        pub fn run(self) {
            println!("子进程的性别是{}------>start", self.sex);
            sleep(Duration::from_secs(1));
            println!("子进程end");
        }
    }
}

mod seed_004 {
    use super::*;

    // Python's `*args, **kwargs`: any number of positional values, any named values.
    #[derive(Debug, Serialize, Deserialize)]
    pub struct ProcessFun {
        pub args: Vec<i32>,
        pub kwargs: BTreeMap<String, String>,
    }

    #[process_task]
    impl ProcessFun {
        pub fn run(self) {
            for _ in 0..10 {
                println!("helloworld");
                println!("{self:?}");
                println!("子进程pid:{}", std::process::id());
                sleep(Duration::from_millis(100));
            }
        }
    }
}

fn main() -> Result<(), process_runtime::Error> {
    // Seed 000: p = MyProcess(); p.start()
    let p = seed_000::MyProcess.spawn()?;
    println!("主进程");
    // The Python program ends here and waits for its child at exit; this one waits now, before
    // the next tutorial's program.
    p.join()?;

    // Seed 001: p = MyProcess("pl"); p.start()
    let p = seed_001::MyProcess {
        name: "pl".to_string(),
    }
    .spawn()?;
    println!("主进程");
    p.join()?;

    // Seed 002: p = Test('女'); p.start()
    let p = seed_002::Test {
        sex: "女".to_string(),
    }
    .spawn()?;
    println!("主进程");
    p.join()?;

    // Seed 004: p = process_fun(args=(1,2), kwargs={'A':'a'}); p.start()
    let p = seed_004::ProcessFun {
        args: vec![1, 2],
        kwargs: BTreeMap::from([("A".to_string(), "a".to_string())]),
    }
    .spawn()?;
    println!("父进程PID:{}", std::process::id());
    sleep(Duration::from_millis(100));
    p.terminate()?; // 无论子进程任务是否完成,立即终止
    // p.join(): 子进程回收资源 阻塞. `join` takes the handle, so instead of asking `is_alive()`
    // afterwards, read what happened from its result.
    if let Err(error) = p.join() {
        println!("{error}");
    }
    println!("父进程结束");
    Ok(())
}
