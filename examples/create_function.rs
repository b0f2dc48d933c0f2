use process_runtime::prelude::*;
use std::time::Duration;

#[process_task]
fn task(name: String) {
    println!("{name}的任务开始执行");
    std::thread::sleep(Duration::from_secs(1));
    println!("{name}的任务已经结束");
}

#[process_task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() -> Result<(), process_runtime::Error> {
    for m in StartMethod::ALL {
        let t = std::time::Instant::now();
        let p = Process::builder(add).start_method(m).spawn((5, 7))?;
        println!("{m}: {} in {:?} pid {}", p.join()?, t.elapsed(), 0);
    }
    let p = task.spawn("cwz".to_string())?;
    println!("主进程");
    p.join()?;
    Ok(())
}
