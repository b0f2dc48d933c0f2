//! The process handle under every start method: return values, exit codes, panics, signals,
//! timeouts, names and pids. Every test starts real child processes.

mod common;

use std::time::{Duration, Instant};

use process_runtime::prelude::*;
use process_runtime::{ProcessError, SpawnError};
use serde::{Deserialize, Serialize};

use common::{is_reaped, spawn, wait_until};

per_start_method!(
    returns_values_of_every_shape,
    struct_style_task_runs_in_a_child,
    exit_code_zero_after_a_return,
    exit_code_of_process_exit,
    panic_carries_message_and_location,
    terminate_gives_minus_15,
    kill_gives_minus_9,
    join_timeout_returns_none_while_running,
    is_alive_before_and_after,
    names_and_pids_inside_the_child,
    builder_name_and_daemon_flag,
    daemon_cannot_start_children,
    children_of_a_child_are_named_after_it,
    large_arguments_and_results_travel_whole,
    a_large_value_of_another_type_travels_whole,
    a_large_value_is_read_across_short_join_timeouts,
    large_arguments_of_concurrent_children_stay_apart,
    dropped_handle_is_reaped,
    a_dropped_handle_does_not_hold_up_a_large_report,
    hundred_concurrent_children_leave_no_zombie,
    detached_children_are_reaped_each_as_it_ends,
    active_children_lists_running_children,
    sentinel_becomes_readable_at_exit,
    wait_leaves_the_value_for_join,
    a_child_killed_while_its_own_child_holds_its_descriptors_is_seen_ending,
    a_child_waits_for_its_children_as_it_ends,
    a_child_has_its_parents_environment,
);

#[process_task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[process_task]
fn nothing() {}

#[process_task]
fn echo(text: String) -> String {
    text
}

#[process_task]
fn checked_div(a: i32, b: i32) -> Result<i32, String> {
    if b == 0 {
        Err(format!("cannot divide {a} by zero"))
    } else {
        Ok(a / b)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Point {
    x: f64,
    y: f64,
    label: Option<String>,
}

#[process_task]
fn mirror(points: Vec<Point>) -> Vec<Point> {
    points.into_iter().map(|p| Point { x: -p.x, ..p }).collect()
}

fn returns_values_of_every_shape(method: StartMethod) {
    assert_eq!(spawn(method, add, (5, 7)).join().unwrap(), 12);
    spawn(method, nothing, ()).join().unwrap();
    let text = "cwz 的任务".to_string();
    assert_eq!(spawn(method, echo, text.clone()).join().unwrap(), text);
    assert_eq!(
        spawn(method, checked_div, (1, 0)).join().unwrap(),
        Err("cannot divide 1 by zero".to_string())
    );
    let points = vec![
        Point {
            x: 1.5,
            y: 2.0,
            label: Some("a".into()),
        },
        Point {
            x: 3.0,
            y: -1.0,
            label: None,
        },
    ];
    let mirrored = spawn(method, mirror, points.clone()).join().unwrap();
    assert_eq!(mirrored.len(), 2);
    assert_eq!(
        mirrored[0],
        Point {
            x: -1.5,
            ..points[0].clone()
        }
    );
    // The same function, in this process.
    assert_eq!(add.call(5, 7), 12);
}

#[derive(Debug, Serialize, Deserialize)]
struct MyProcess {
    name: String,
}

#[process_task]
impl MyProcess {
    fn run(self) -> String {
        format!("{} is running in {}", self.name, std::process::id())
    }
}

fn struct_style_task_runs_in_a_child(method: StartMethod) {
    let p = spawn(method, MyProcess { name: "pl".into() }, ());
    let pid = p.pid();
    assert_eq!(p.join().unwrap(), format!("pl is running in {pid}"));
}

fn exit_code_zero_after_a_return(method: StartMethod) {
    let p = spawn(method, add, (1, 1));
    assert!(wait_until(|| p.exitcode().is_some()));
    assert_eq!(p.exitcode(), Some(0));
    assert_eq!(p.join().unwrap(), 2);
}

#[process_task]
fn exit_with(code: i32) {
    std::process::exit(code);
}

fn exit_code_of_process_exit(method: StartMethod) {
    let p = spawn(method, exit_with, 3);
    let error = p.join().unwrap_err();
    assert!(
        matches!(error, ProcessError::Exited { code: 3 }),
        "{error:?}"
    );
    assert_eq!(error.exitcode(), Some(3));
    assert_eq!(
        error.to_string(),
        "the child exited with code 3 before sending a result"
    );
}

#[process_task]
fn fail(message: String) -> u8 {
    panic!("{message}")
}

fn panic_carries_message_and_location(method: StartMethod) {
    let p = spawn(method, fail, "boom at 42".into());
    let error = p.join().unwrap_err();
    assert!(error.is_panic(), "{error:?}");
    assert_eq!(error.exitcode(), Some(1));
    let info = error.panic_info().unwrap();
    assert_eq!(info.message(), "boom at 42");
    let location = info
        .location()
        .expect("the child's hook records where it panicked");
    assert!(location.file().ends_with("tests/process.rs"), "{location}");
    assert!(location.line() > 0);
    assert!(
        error
            .to_string()
            .starts_with("the task panicked: 'boom at 42' at "),
        "{error}"
    );
}

/// Runs until killed. Started as a daemon in these tests, so that a test that fails before it
/// kills the child does not leave the test binary waiting for it at exit.
#[process_task]
fn sleep_forever() {
    loop {
        std::thread::park();
    }
}

/// A daemon running [`sleep_forever`].
fn sleeper(method: StartMethod) -> Process<()> {
    Process::builder(sleep_forever)
        .daemon(true)
        .start_method(method)
        .spawn(())
        .expect("start a child")
}

fn terminate_gives_minus_15(method: StartMethod) {
    let p = sleeper(method);
    assert_eq!(p.exitcode(), None);
    p.terminate().unwrap();
    assert!(wait_until(|| p.exitcode().is_some()));
    assert_eq!(p.exitcode(), Some(-15));
    let error = p.join().unwrap_err();
    assert!(
        matches!(error, ProcessError::Killed { signal: 15 }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "the child was killed by signal 15 (SIGTERM)"
    );
}

fn kill_gives_minus_9(method: StartMethod) {
    let p = sleeper(method);
    p.kill().unwrap();
    let error = p.join().unwrap_err();
    assert!(
        matches!(error, ProcessError::Killed { signal: 9 }),
        "{error:?}"
    );
    assert_eq!(error.exitcode(), Some(-9));
}

fn join_timeout_returns_none_while_running(method: StartMethod) {
    let mut p = sleeper(method);
    let started = Instant::now();
    assert_eq!(p.join_timeout(Duration::from_millis(200)).unwrap(), None);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(p.is_alive());
    p.kill().unwrap();
    assert!(matches!(
        p.join_timeout(common::DEADLINE),
        Err(ProcessError::Killed { signal: 9 })
    ));

    let mut quick = spawn(method, add, (2, 3));
    assert_eq!(quick.join_timeout(common::DEADLINE).unwrap(), Some(5));
    // The value was taken once.
    assert!(matches!(
        quick.join_timeout(Duration::ZERO),
        Err(ProcessError::AlreadyJoined)
    ));
    assert!(matches!(quick.join(), Err(ProcessError::AlreadyJoined)));
}

fn is_alive_before_and_after(method: StartMethod) {
    let p = sleeper(method);
    assert!(p.is_alive());
    p.terminate().unwrap();
    assert!(wait_until(|| !p.is_alive()));
    // Reaped by is_alive: the pid is free again.
    assert!(is_reaped(p.pid()));
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Identity {
    name: String,
    pid: u32,
    std_pid: u32,
    ppid: u32,
    parent_name: Option<String>,
    parent_pid: Option<u32>,
    daemon: bool,
}

#[process_task]
fn who_am_i() -> Identity {
    let me = current_process();
    let parent = parent_process();
    Identity {
        name: me.name().to_owned(),
        pid: me.pid(),
        std_pid: std::process::id(),
        ppid: nix::unistd::getppid().as_raw() as u32,
        parent_name: parent.as_ref().map(|p| p.name().to_owned()),
        parent_pid: parent.as_ref().map(|p| p.pid()),
        daemon: me.is_daemon(),
    }
}

fn names_and_pids_inside_the_child(method: StartMethod) {
    let p = spawn(method, who_am_i, ());
    let (pid, name) = (p.pid(), p.name().to_owned());
    assert!(name.starts_with("Process-"), "{name}");
    let id = p.join().unwrap();
    assert_eq!(id.name, name);
    assert_eq!(id.pid, pid);
    assert_eq!(id.std_pid, pid);
    // The parent is this process under every start method, the fork server's included.
    assert_eq!(id.ppid, std::process::id());
    assert_eq!(id.parent_pid, Some(std::process::id()));
    assert_eq!(id.parent_name.as_deref(), Some("MainProcess"));
    assert!(!id.daemon);
    assert_eq!(current_process().name(), "MainProcess");
    assert!(parent_process().is_none());
}

fn builder_name_and_daemon_flag(method: StartMethod) {
    let p = Process::builder(who_am_i)
        .name("test")
        .daemon(true)
        .start_method(method)
        .spawn(())
        .unwrap();
    assert_eq!(p.name(), "test");
    assert!(p.is_daemon());
    let id = p.join().unwrap();
    assert_eq!(id.name, "test");
    assert!(id.daemon);
}

#[process_task]
fn try_to_have_a_child() -> String {
    match nothing.spawn() {
        Ok(p) => {
            let _ = p.join();
            "started a child".to_owned()
        }
        Err(error) => {
            assert!(matches!(error, SpawnError::DaemonCannotHaveChildren));
            error.to_string()
        }
    }
}

fn daemon_cannot_start_children(method: StartMethod) {
    let daemon = Process::builder(try_to_have_a_child)
        .daemon(true)
        .start_method(method)
        .spawn(())
        .unwrap();
    assert_eq!(
        daemon.join().unwrap(),
        "daemonic processes are not allowed to have children"
    );
    let normal = spawn(method, try_to_have_a_child, ());
    assert_eq!(normal.join().unwrap(), "started a child");
}

#[process_task]
fn names_of_my_children(method: StartMethod) -> (String, Vec<Identity>) {
    let me = current_process().name().to_owned();
    let kids = (0..2)
        .map(|_| spawn(method, who_am_i, ()).join().unwrap())
        .collect();
    (me, kids)
}

fn children_of_a_child_are_named_after_it(method: StartMethod) {
    let p = spawn(method, names_of_my_children, method);
    let child_pid = p.pid();
    let (me, kids) = p.join().unwrap();
    assert_eq!(kids[0].name, format!("{me}:1"));
    assert_eq!(kids[1].name, format!("{me}:2"));
    for kid in &kids {
        assert_eq!(kid.ppid, child_pid);
        assert_eq!(kid.parent_pid, Some(child_pid));
        assert_eq!(kid.parent_name.as_deref(), Some(me.as_str()));
    }
}

#[process_task]
fn reverse(bytes: Vec<u8>) -> Vec<u8> {
    bytes.into_iter().rev().collect()
}

fn large_arguments_and_results_travel_whole(method: StartMethod) {
    // Large enough to travel through shared memory beside the messages, both ways.
    let bytes: Vec<u8> = (0..8 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    let p = spawn(method, reverse, bytes.clone());
    let back = p.join().unwrap();
    assert_eq!(back.len(), bytes.len());
    assert!(back.iter().rev().eq(bytes.iter()));
}

#[process_task]
fn repeat(text: String, times: usize) -> (String, Vec<u32>) {
    (text.repeat(times), (0..times as u32).collect())
}

fn a_large_value_of_another_type_travels_whole(method: StartMethod) {
    // Encoded in the message itself (only a whole `Vec<u8>` goes beside it): many times what a
    // pipe or a socket holds at once, so the parent reads while the child writes.
    let (text, numbers) = spawn(method, repeat, ("abc".to_string(), 1 << 20))
        .join()
        .unwrap();
    assert_eq!(text.len(), 3 << 20);
    assert!(text.as_bytes().chunks(3).all(|chunk| chunk == b"abc"));
    assert!(numbers.iter().copied().eq(0..1 << 20));
}

fn a_large_value_is_read_across_short_join_timeouts(method: StartMethod) {
    // Each short wait reads what has come and keeps it: the value is whole in the end.
    let mut child = spawn(method, repeat, ("xyz".to_string(), 1 << 20));
    let deadline = Instant::now() + common::DEADLINE;
    let (text, numbers) = loop {
        if let Some(value) = child.join_timeout(Duration::from_micros(200)).unwrap() {
            break value;
        }
        assert!(Instant::now() < deadline, "the value never came whole");
    };
    assert_eq!(text.len(), 3 << 20);
    assert!(text.as_bytes().chunks(3).all(|chunk| chunk == b"xyz"));
    assert!(numbers.iter().copied().eq(0..1 << 20));
}

fn large_arguments_of_concurrent_children_stay_apart(method: StartMethod) {
    // Each argument is in shared memory that the parent would use again for the next one if it
    // let go of it before the child had read it: every child must still get its own bytes.
    let inputs: Vec<Vec<u8>> = (0..6).map(|seed| common::pattern(seed, 3 << 20)).collect();
    let children: Vec<_> = inputs
        .iter()
        .map(|bytes| spawn(method, reverse, bytes.clone()))
        .collect();
    for (child, input) in children.into_iter().zip(&inputs).rev() {
        let back = child.join().unwrap();
        assert!(
            back.iter().rev().eq(input.iter()),
            "a child got other bytes"
        );
    }
}

fn dropped_handle_is_reaped(method: StartMethod) {
    let p = spawn(method, add, (1, 2));
    let pid = p.pid();
    drop(p);
    assert!(
        wait_until(|| is_reaped(pid)),
        "child {pid} was left a zombie"
    );

    // Dropped while still running: reaped when it ends.
    let p = sleeper(method);
    let pid = p.pid();
    p.kill().unwrap();
    drop(p);
    assert!(
        wait_until(|| is_reaped(pid)),
        "killed child {pid} was left a zombie"
    );
}

fn a_dropped_handle_does_not_hold_up_a_large_report(method: StartMethod) {
    // Nobody will read the report: the child must not wait for ever to write it (a pipe or a
    // socket holds far less than 3 MiB), but end, and be reaped.
    let child = spawn(method, repeat, ("abc".to_string(), 1 << 20));
    let pid = child.pid();
    drop(child);
    let reaped = wait_until(|| is_reaped(pid));
    if !reaped {
        // SAFETY: sends SIGKILL to the child this test started, so that the test binary does
        // not wait for it at exit.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    assert!(
        reaped,
        "child {pid} was still writing a report nobody reads"
    );
}

fn hundred_concurrent_children_leave_no_zombie(method: StartMethod) {
    let children: Vec<_> = (0..100).map(|i| spawn(method, add, (i, i))).collect();
    let pids: Vec<u32> = children.iter().map(|p| p.pid()).collect();
    // Half are joined; the other half dropped while they may still run, left to the reaper.
    for (i, p) in children.into_iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(p.join().unwrap(), 2 * i as i64);
        } else {
            drop(p);
        }
    }
    assert!(
        wait_until(|| pids.iter().all(|&pid| is_reaped(pid))),
        "zombies left among {pids:?}"
    );
}

/// The reaper watches many dropped handles at once: the children that end are reaped while the
/// others go on running, and those are reaped in turn when they end.
fn detached_children_are_reaped_each_as_it_ends(method: StartMethod) {
    let running: Vec<u32> = (0..20)
        .map(|_| {
            let p = sleeper(method);
            p.pid()
        })
        .collect();
    let ended: Vec<u32> = (0..20).map(|i| spawn(method, add, (i, i)).pid()).collect();
    assert!(
        wait_until(|| ended.iter().all(|&pid| is_reaped(pid))),
        "zombies left among {ended:?}"
    );
    for &pid in &running {
        assert!(
            !matches!(common::proc_state(pid), None | Some('Z')),
            "{pid} should still run"
        );
        // Not reaped, so the pid is still this child's.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    assert!(
        wait_until(|| running.iter().all(|&pid| is_reaped(pid))),
        "zombies left among {running:?}"
    );
}

fn active_children_lists_running_children(method: StartMethod) {
    let p = Process::builder(sleep_forever)
        .name("active-one")
        .daemon(true)
        .start_method(method)
        .spawn(())
        .unwrap();
    let listed = active_children();
    let entry = listed
        .iter()
        .find(|c| c.pid() == p.pid())
        .expect("the running child is listed");
    assert_eq!(entry.name(), "active-one");
    p.kill().unwrap();
    assert!(wait_until(|| active_children()
        .iter()
        .all(|c| c.pid() != p.pid())));
    assert!(matches!(p.join(), Err(ProcessError::Killed { signal: 9 })));
}

fn sentinel_becomes_readable_at_exit(method: StartMethod) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let p = sleeper(method);
    let mut fds = [PollFd::new(p.sentinel(), PollFlags::POLLIN)];
    assert_eq!(poll(&mut fds, PollTimeout::ZERO).unwrap(), 0);
    p.kill().unwrap();
    let mut fds = [PollFd::new(p.sentinel(), PollFlags::POLLIN)];
    assert_eq!(
        poll(&mut fds, PollTimeout::try_from(common::DEADLINE).unwrap()).unwrap(),
        1
    );
    assert!(matches!(p.join(), Err(ProcessError::Killed { signal: 9 })));
}

fn wait_leaves_the_value_for_join(method: StartMethod) {
    let mut p = spawn(method, add, (2, 2));
    p.wait().unwrap();
    assert!(!p.is_alive());
    assert_eq!(p.exitcode(), Some(0));
    assert_eq!(p.join().unwrap(), 4);

    let mut forever = sleeper(method);
    assert!(!forever.wait_timeout(Duration::from_millis(100)).unwrap());
    forever.kill().unwrap();
    assert!(forever.wait_timeout(common::DEADLINE).unwrap());
    assert_eq!(forever.exitcode(), Some(-9));
    assert!(matches!(
        forever.join(),
        Err(ProcessError::Killed { signal: 9 })
    ));

    // A timeout too large for a deadline means no deadline, not a panic.
    let mut q = spawn(method, add, (1, 2));
    assert_eq!(q.join_timeout(Duration::MAX).unwrap(), Some(3));
}

/// Forks made on one thread while another thread starts children through the fork server: a
/// forked child must never inherit a runtime lock held by the other thread (it deadlocked on the
/// fork server's lock at its exit before forks took every runtime lock with them).
#[test]
fn forks_beside_fork_server_starts_on_another_thread_never_deadlock() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let other = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let p = spawn(StartMethod::ForkServer, add, (1, 1));
                assert_eq!(p.join().unwrap(), 2);
            }
        })
    };
    for i in 0..200 {
        let mut p = spawn(StartMethod::Fork, add, (i, 1));
        match p.join_timeout(common::DEADLINE) {
            Ok(Some(sum)) => assert_eq!(sum, i + 1),
            other => {
                // Killed, so that the test binary does not wait for it at exit.
                p.kill().unwrap();
                panic!("fork {i}: {other:?} (a forked child hung)");
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    other.join().unwrap();
}

/// Forks a process that inherits every descriptor of this child (its report channel or pipe
/// among them) and sleeps until killed, tells its pid through `grandchild`, then dies by
/// `SIGKILL` without reporting.
#[process_task]
fn die_leaving_a_grandchild(grandchild: Value<i32>) {
    // SAFETY: the forked process calls only `pause` and `_exit`, which are async-signal-safe,
    // so the state of the other threads it does not have cannot matter.
    match unsafe { libc::fork() } {
        0 => loop {
            // SAFETY: pause only waits for a signal.
            unsafe { libc::pause() };
        },
        -1 => std::process::exit(3),
        pid => grandchild.set(pid),
    }
    // SAFETY: sends SIGKILL to this very process.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}

fn a_child_killed_while_its_own_child_holds_its_descriptors_is_seen_ending(method: StartMethod) {
    // The grandchild keeps the child's end of the report channel open: the parent must learn
    // from the child's end, not from the channel's, that no report will come.
    let grandchild = Value::new(0).unwrap();
    let mut child = spawn(method, die_leaving_a_grandchild, grandchild.clone());
    let joined = child.join_timeout(common::DEADLINE);
    let pid = grandchild.get();
    if pid > 0 {
        // SAFETY: sends SIGKILL to the grandchild this test made; its new parent reaps it.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    match joined {
        Err(ProcessError::Killed { signal: 9 }) => {}
        other => panic!("expected the child to be seen killed, got {other:?}"),
    }
}

/// Records in `done`, after a while, that it ran to its end.
#[process_task]
fn finish_later(done: Value<u32>) {
    std::thread::sleep(Duration::from_millis(200));
    done.set(1);
}

/// Starts [`finish_later`] in a child that is not a daemon, lets go of its handle, and returns.
#[process_task]
fn start_a_child_and_return(done: Value<u32>) {
    Process::builder(finish_later)
        .spawn(done)
        .expect("start a child");
}

fn a_child_waits_for_its_children_as_it_ends(method: StartMethod) {
    // A child that started children of its own ends as Python's do: it waits for them first
    // (a forked child that started none skips all this). If it did not, the grandchild would
    // still be sleeping when the join returns.
    let done = Value::new(0).unwrap();
    spawn(method, start_a_child_and_return, done.clone())
        .join()
        .unwrap();
    assert_eq!(done.get(), 1, "the child ended before its own child did");
}

#[process_task]
fn environment() -> Vec<(String, String)> {
    let mut variables: Vec<(String, String)> = std::env::vars().collect();
    variables.sort();
    variables
}

fn a_child_has_its_parents_environment(method: StartMethod) {
    // Whatever a start method sets for its own use while the child starts (the bootstrap
    // variable, the directory of the handshake's socket) is gone before the task runs.
    let mut here: Vec<(String, String)> = std::env::vars().collect();
    here.sort();
    let there = spawn(method, environment, ()).join().unwrap();
    assert_eq!(there, here);
}
