//! Python's lifetime rules, seen from outside: a helper program (tests/support/helper.rs) starts
//! a child and then exits or is killed, and the test watches what becomes of the child.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use process_runtime::StartMethod;

use common::{is_dead, proc_ppid, wait_until};

per_start_method!(
    daemon_is_terminated_when_its_parent_exits,
    daemon_dies_when_its_parent_is_killed,
    parent_waits_for_its_non_daemon_child_at_exit,
    pool_workers_die_when_the_pool_process_is_killed,
    nothing_the_runtime_started_outlives_a_killed_parent,
);

/// Starts the helper and reads the pid of the child it started.
fn helper(method: StartMethod, mode: &str) -> (Child, u32) {
    let (helper, pids) = helper_with_children(method, mode, 1);
    (helper, pids[0])
}

/// Starts the helper and reads the pids of the `count` children it started.
fn helper_with_children(method: StartMethod, mode: &str, count: usize) -> (Child, Vec<u32>) {
    let mut helper = Command::new(env!("CARGO_BIN_EXE_pt-helper"))
        .args([method.as_str(), mode])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the helper");
    let mut lines = BufReader::new(helper.stdout.take().expect("piped")).lines();
    let pids = (0..count)
        .map(|_| {
            let line = lines.next().expect("a line from the helper").expect("read");
            line.strip_prefix("child ")
                .and_then(|pid| pid.trim().parse().ok())
                .unwrap_or_else(|| panic!("the helper said {line:?}"))
        })
        .collect();
    (helper, pids)
}

fn daemon_is_terminated_when_its_parent_exits(method: StartMethod) {
    let (mut helper, child) = helper(method, "daemon-then-exit");
    let status = helper.wait().expect("wait for the helper");
    assert!(status.success(), "{status}");
    // The helper's exit handler terminated and reaped its daemon before the helper ended.
    assert!(is_dead(child), "daemon {child} outlived its parent");
}

fn daemon_dies_when_its_parent_is_killed(method: StartMethod) {
    let (mut helper, child) = helper(method, "daemon-then-wait");
    assert!(!is_dead(child));
    helper.kill().expect("SIGKILL the helper");
    helper.wait().expect("wait for the helper");
    // No exit handler runs under SIGKILL: the parent-death signal takes the daemon down.
    assert!(wait_until(|| is_dead(child)), "daemon {child} was orphaned");
}

fn parent_waits_for_its_non_daemon_child_at_exit(method: StartMethod) {
    let (mut helper, child) = helper(method, "child-then-exit");
    // The child sleeps 500 ms; the helper's main returned at once, but its exit handler waits,
    // so by the time the helper has ended, the child has ended too and was reaped by it.
    let status = helper.wait().expect("wait for the helper");
    assert!(status.success(), "{status}");
    assert!(
        is_dead(child),
        "non-daemon child {child} was still running when its parent ended"
    );
}

fn pool_workers_die_when_the_pool_process_is_killed(method: StartMethod) {
    let (mut helper, workers) = helper_with_children(method, "pool-then-wait", 2);
    assert!(workers.iter().all(|&pid| !is_dead(pid)));
    helper.kill().expect("SIGKILL the helper");
    helper.wait().expect("wait for the helper");
    assert!(
        wait_until(|| workers.iter().all(|&pid| is_dead(pid))),
        "pool workers {workers:?} were orphaned"
    );
}

/// The pids of the processes whose parent is `parent`, from /proc.
fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| proc_ppid(pid) == Some(parent))
        .collect()
}

fn nothing_the_runtime_started_outlives_a_killed_parent(method: StartMethod) {
    let (mut helper, child) = helper(method, "daemon-then-wait");
    // Under ForkServer the helper's children are the child, the server and, once the server
    // has replaced the spare the child came from, its spares waiting for requests (`SPARES` in
    // process-runtime/src/spawn/forkserver.rs, two).
    let expected = match method {
        StartMethod::ForkServer => 4,
        _ => 1,
    };
    let mut started = Vec::new();
    let all_there = wait_until(|| {
        started = children_of(helper.id());
        started.len() >= expected
    });
    helper.kill().expect("SIGKILL the helper");
    helper.wait().expect("wait for the helper");
    assert!(
        all_there && started.contains(&child),
        "the helper had {started:?} as children, expected {expected} with {child} among them"
    );
    // No exit handler runs under SIGKILL: the parent-death signal takes each of them down.
    for pid in started {
        assert!(wait_until(|| is_dead(pid)), "{pid} outlived the helper");
    }
}

/// A directory for the test, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &std::ffi::OsStr) -> TempDir {
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("make the directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the helper's `join` with `TMPDIR` unset and `XDG_RUNTIME_DIR` at `runtime_dir`: the
/// re-executed child and the fork server start there (see `open_endpoint` in spawn/bootstrap.rs).
fn join_with_runtime_dir(method: StartMethod, runtime_dir: &std::path::Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_pt-helper"))
        .args([method.as_str(), "join"])
        .env_remove("TMPDIR")
        .env("XDG_RUNTIME_DIR", runtime_dir)
        .output()
        .expect("run the helper");
    assert!(
        output.status.success(),
        "{method}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn children_start_whatever_the_runtime_directory_is_called() {
    use std::os::unix::ffi::OsStrExt;
    // A name that is not UTF-8, which ipc-channel cannot put a socket under.
    let mut name = format!("pt-runtime-{}-", std::process::id()).into_bytes();
    name.push(0xff);
    let odd = TempDir::new(std::ffi::OsStr::from_bytes(&name));
    // A path of 100 bytes: with ipc-channel's `/.tmpXXXXXX/socket` after it, too long for a
    // socket's address (107 bytes and a NUL), which cuts it to `<dir>/.tmpXX`.
    let prefix = format!("pt-runtime-{}-", std::process::id());
    let base = std::env::temp_dir().as_os_str().len() + 1 + prefix.len();
    let long = TempDir::new(std::ffi::OsStr::new(&format!(
        "{prefix}{}",
        "x".repeat(100_usize.saturating_sub(base).max(1))
    )));
    for method in [StartMethod::Spawn, StartMethod::ForkServer] {
        join_with_runtime_dir(method, &odd.0);
        join_with_runtime_dir(method, &long.0);
    }
    // Nothing was left in them.
    for dir in [&odd.0, &long.0] {
        let left: Vec<_> = std::fs::read_dir(dir).expect("list").collect();
        assert!(left.is_empty(), "{}: {left:?}", dir.display());
    }
}
