//! 进程间数据是相互隔离的 — each process has its own globals; shared values say so in their type.
//!
//! Ports every isolation program of the seeds:
//! - 000: `x = 100`, a child sets `global x = 200`, the parent still prints 100;
//! - 001: `name = "pl"`, a child sets it to "pl1" and prints it, the parent still has "pl";
//! - 002: `x = 0`, a child sets it to 100, the parent still prints 0;
//! - 003: 全局变量问题, the global list a child appends to, which another process does not see.
//!
//! A Python module global is a `process_global!` here: each process has its own copy, a child
//! starts from its parent's value, and what the child writes stays in the child. Each program is
//! followed by its shared version, where the value lives in shared memory (`Value`, `Array`) or
//! travels back on a `Queue`, and the change does reach the parent.
//!
//! Run it with `cargo run --example isolation`.

use process_runtime::prelude::*;

process_global! {
    static X: i64 = 100;
    static NAME: String = "pl".to_string();
    static X2: i64 = 0;
    static G_LIST: Vec<i32> = vec![11, 22];
}

// Seed 000
#[process_task]
fn func() {
    println!("执行func函数");
    X.set(200); // global x; x = 200: the child's own x
}

#[process_task]
fn func_shared(x: Value<i64>) {
    println!("执行func函数");
    x.set(200); // the one x that parent and child share
}

// Seed 001
#[process_task]
fn task() {
    NAME.set("pl1".to_string());
    println!("子进程：{}", NAME.get());
}

#[process_task]
fn task_shared(names: Queue<String>) {
    // A string goes back to the parent on a queue. The queue is empty, so there is room.
    names
        .put("pl1".to_string())
        .expect("an empty queue has room");
    println!("子进程：pl1");
}

// Seed 002
#[process_task]
fn task_x() {
    X2.set(100);
    println!("子进程的x修改为{}", X2.get());
}

#[process_task]
fn task_x_shared(x: Value<i64>) {
    x.set(100);
    println!("子进程的x修改为{}", x.get());
}

// Seed 003
#[process_task]
fn work1() {
    G_LIST.update(|list| list.extend(0..3));
    println!("work1 g_list: {:?}", G_LIST.get());
}

#[process_task]
fn work2() {
    println!("work2 g_list: {:?}", G_LIST.get());
}

#[process_task]
fn work1_shared(list: Array<i32>) {
    for i in 0..3 {
        list.set(2 + i, i as i32);
    }
    println!("work1 g_list: {:?}", list.to_vec());
}

#[process_task]
fn work2_shared(list: Array<i32>) {
    println!("work2 g_list: {:?}", list.to_vec());
}

fn main() -> Result<(), process_runtime::Error> {
    // 000: the parent prints its x while the child runs; the child's x is its own.
    let p = func.spawn()?;
    println!("{}", X.get()); // 不能修改x的值: 100
    println!("主进程");
    p.join()?;
    let x = Value::new(100_i64)?;
    func_shared.spawn(x.clone())?.join()?;
    println!("{}", x.get()); // shared: 200
    println!("主进程");

    // 001
    task.spawn()?.join()?;
    println!("主进程：{}", NAME.get()); // pl
    let names = Queue::new()?;
    task_shared.spawn(names.clone())?.join()?;
    println!("主进程：{}", names.get()?); // pl1, sent back

    // 002
    task_x.spawn()?.join()?;
    println!("{}", X2.get()); // 0
    let x = Value::new(0_i64)?;
    task_x_shared.spawn(x.clone())?.join()?;
    println!("{}", x.get()); // 100

    // 003: 进程间不能实现全局变量的共享
    work1.spawn()?.join()?;
    work2.spawn()?.join()?; // [11, 22]: work1's appends stayed in work1
    let list = Array::from_slice(&[11, 22, 0, 0, 0])?;
    work1_shared.spawn(list.clone())?.join()?;
    work2_shared.spawn(list.clone())?.join()?; // [11, 22, 0, 1, 2]: one array for all
    Ok(())
}
