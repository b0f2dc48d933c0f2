//! A fork server that dies under its requester. In a test binary of its own: it kills the
//! process's fork server, which every `ForkServer` start of the binary shares.

mod common;

use process_runtime::prelude::*;

use common::{proc_ppid, proc_state, wait_until};

#[process_task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// The pids of this process's children, from /proc.
fn children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| proc_ppid(pid) == Some(me))
        .collect()
}

fn spawn_and_join() -> i64 {
    Process::builder(add)
        .start_method(StartMethod::ForkServer)
        .spawn((40, 2))
        .expect("spawn through the fork server")
        .join()
        .expect("join")
}

#[test]
fn a_lost_fork_server_leaves_no_zombie() {
    assert_eq!(spawn_and_join(), 42);
    // The server and its spares: all children of this process (the spares are cloned with
    // CLONE_PARENT).
    assert!(
        wait_until(|| children().len() > fork_server_spares()),
        "the server and its spares: {:?}",
        children()
    );
    // The server is the one that watches its spares, on an epoll set; a spare has none once
    // it waits for a request.
    let mut servers = Vec::new();
    assert!(
        wait_until(|| {
            servers = children()
                .into_iter()
                .filter(|&pid| has_epoll(pid))
                .collect();
            servers.len() == 1
        }),
        "one fork server among {:?}",
        children()
    );
    let server = servers[0];
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the fork server");
    assert!(wait_until(|| proc_state(server) == Some('Z')));
    // The next start finds the server gone, starts another, and gives up on the old one: it
    // reaps it, and its spares, which had been waiting for requests that will never come.
    assert_eq!(spawn_and_join(), 42);
    assert!(
        wait_until(|| children()
            .into_iter()
            .all(|pid| proc_state(pid) != Some('Z'))),
        "zombie children left: {:?}",
        children()
            .into_iter()
            .filter(|&pid| proc_state(pid) == Some('Z'))
            .collect::<Vec<_>>()
    );
    // The new server serves.
    assert_eq!(spawn_and_join(), 42);
}

/// Whether a process holds an epoll set.
fn has_epoll(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .any(|target| target.to_string_lossy() == "anon_inode:[eventpoll]")
    })
}

/// How many spares a fork server keeps (see `spawn/forkserver.rs`).
fn fork_server_spares() -> usize {
    2
}
