//! The OS floor: what the same work costs with raw `fork`, `waitpid` and pipes, written here
//! with nix and no runtime at all.
//!
//! Every child forked here calls only async-signal-safe functions (`read`, `write`, `pause`,
//! `_exit`) on memory allocated before the fork, since the bench process has other threads.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, pipe, read, write};

/// Ends a forked child at once, without running exit handlers or destructors.
fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` is async-signal-safe and ends the process; nothing runs after it.
    unsafe { libc::_exit(code) }
}

/// Forks; the child runs `child` (which must call only async-signal-safe functions) and exits
/// with the code it returns, the parent gets the child's pid.
fn fork_child(child: impl FnOnce() -> i32) -> io::Result<Pid> {
    // SAFETY: every caller passes a `child` that uses only async-signal-safe calls (read, write,
    // pause, _exit) on memory allocated before the fork, as `fork` demands in a multi-threaded
    // process; the child ends with `_exit`, so the copied state of other threads is never
    // touched.
    match unsafe { fork() }? {
        ForkResult::Child => exit_now(child()),
        ForkResult::Parent { child } => Ok(child),
    }
}

/// Reads exactly `buf.len()` bytes with `read(2)`; no allocation, so usable in a forked child.
fn read_full(fd: impl AsFd, buf: &mut [u8]) -> bool {
    let mut done = 0;
    while done < buf.len() {
        match read(fd.as_fd(), &mut buf[done..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => done += n,
        }
    }
    true
}

/// Writes all of `buf` with `write(2)`; no allocation, so usable in a forked child.
fn write_full(fd: impl AsFd, buf: &[u8]) -> bool {
    let mut done = 0;
    while done < buf.len() {
        match write(fd.as_fd(), &buf[done..]) {
            Ok(0) | Err(_) => return false,
            Ok(n) => done += n,
        }
    }
    true
}

/// `fork`, the child `_exit(0)`s, the parent `waitpid`s: the cheapest child there is.
pub fn fork_waitpid() -> io::Result<()> {
    let child = fork_child(|| 0)?;
    waitpid(child, None)?;
    Ok(())
}

/// `fork` + an 8-byte pipe round trip: the parent sends `x` on one pipe, the child answers
/// `x * 2` on another and exits, the parent reads it and `waitpid`s. The pipes are made per call,
/// as a runtime must.
pub fn fork_pipe_round_trip(x: u64) -> io::Result<u64> {
    let (request_rx, request_tx) = pipe()?;
    let (answer_rx, answer_tx) = pipe()?;
    let child = fork_child(|| {
        let mut buf = [0u8; 8];
        if !read_full(&request_rx, &mut buf) {
            return 1;
        }
        let answer = u64::from_ne_bytes(buf).wrapping_mul(2).to_ne_bytes();
        if write_full(&answer_tx, &answer) {
            0
        } else {
            1
        }
    })?;
    drop((request_rx, answer_tx));
    let mut buf = [0u8; 8];
    let ok = write_full(&request_tx, &x.to_ne_bytes()) && read_full(&answer_rx, &mut buf);
    waitpid(child, None)?;
    if !ok {
        return Err(io::Error::other("the forked child did not answer"));
    }
    Ok(u64::from_ne_bytes(buf))
}

/// A forked child of this process that does nothing until it is killed, for its memory.
#[derive(Debug)]
pub struct IdleChild(Pid);

impl IdleChild {
    pub fn start() -> io::Result<IdleChild> {
        fork_child(|| {
            loop {
                nix::unistd::pause();
            }
        })
        .map(IdleChild)
    }

    pub fn pid(&self) -> u32 {
        self.0.as_raw() as u32
    }
}

impl Drop for IdleChild {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGKILL);
        let _ = waitpid(self.0, None);
    }
}

/// A hand-rolled pool: forked workers, each reading messages from a pipe and writing the
/// answers back on another. A message is a `u64` count `n` then `n` `u64`s; the answer is the
/// `n` doubled values. One task at a time is `n = 1`: one write and one read per task on each
/// side.
#[derive(Debug)]
pub struct RawPool {
    workers: Vec<RawWorker>,
}

#[derive(Debug)]
struct RawWorker {
    pid: Pid,
    requests: File,
    answers: File,
}

impl RawPool {
    /// Forks `processes` workers that accept messages of up to `max_chunk` values.
    pub fn start(processes: usize, max_chunk: usize) -> io::Result<RawPool> {
        let mut workers = Vec::with_capacity(processes);
        for _ in 0..processes {
            let (request_rx, request_tx) = pipe()?;
            let (answer_rx, answer_tx) = pipe()?;
            let mut buf = vec![0u8; max_chunk * 8];
            let pid = fork_child(move || serve(&request_rx, &answer_tx, &mut buf))?;
            workers.push(RawWorker {
                pid,
                requests: File::from(request_tx),
                answers: File::from(answer_rx),
            });
        }
        Ok(RawPool { workers })
    }

    /// Sends `0..tasks` in messages of `chunk` values, round robin over the workers, with every
    /// message in flight at once (a reader thread per worker collects the answers and checks
    /// them). Returns the time from the first write to the last answer.
    pub fn run(&mut self, tasks: u64, chunk: u64) -> io::Result<Duration> {
        let processes = self.workers.len() as u64;
        // (first value, count) of each message, per worker.
        let mut plans: Vec<Vec<(u64, u64)>> = vec![Vec::new(); self.workers.len()];
        let mut start = 0;
        let mut message = 0;
        while start < tasks {
            let n = chunk.min(tasks - start);
            plans[(message % processes) as usize].push((start, n));
            start += n;
            message += 1;
        }
        let began = Instant::now();
        std::thread::scope(|scope| -> io::Result<()> {
            let mut requests = Vec::new();
            let mut readers = Vec::new();
            for (worker, plan) in self.workers.iter_mut().zip(&plans) {
                requests.push(&mut worker.requests);
                let answers = &mut worker.answers;
                readers.push(scope.spawn(move || collect(answers, plan)));
            }
            let mut buf = Vec::with_capacity((chunk as usize + 1) * 8);
            for round in 0.. {
                let mut sent = false;
                for (requests, plan) in requests.iter_mut().zip(&plans) {
                    let Some(&(first, n)) = plan.get(round) else {
                        continue;
                    };
                    buf.clear();
                    buf.extend_from_slice(&n.to_ne_bytes());
                    for x in first..first + n {
                        buf.extend_from_slice(&x.to_ne_bytes());
                    }
                    requests.write_all(&buf)?;
                    sent = true;
                }
                if !sent {
                    break;
                }
            }
            for reader in readers {
                reader.join().expect("reader thread")?;
            }
            Ok(())
        })?;
        Ok(began.elapsed())
    }
}

/// Reads the answers to `plan` from one worker and checks each.
fn collect(answers: &mut File, plan: &[(u64, u64)]) -> io::Result<()> {
    let mut buf = Vec::new();
    for &(first, n) in plan {
        buf.resize(n as usize * 8, 0);
        answers.read_exact(&mut buf)?;
        for (x, answer) in (first..).zip(buf.chunks_exact(8)) {
            let answer = u64::from_ne_bytes(answer.try_into().expect("8 bytes"));
            if answer != x * 2 {
                return Err(io::Error::other(format!(
                    "worker answered {answer} for {x}"
                )));
            }
        }
    }
    Ok(())
}

/// A raw worker's loop, in the forked child; `buf` was allocated before the fork. Returns the
/// exit code: 0 when told to stop.
fn serve(requests: &OwnedFd, answers: &OwnedFd, buf: &mut [u8]) -> i32 {
    loop {
        let mut header = [0u8; 8];
        if !read_full(requests, &mut header) {
            return 0;
        }
        let n = u64::from_ne_bytes(header) as usize;
        if n == 0 || n * 8 > buf.len() {
            return 0;
        }
        let values = &mut buf[..n * 8];
        if !read_full(requests, values) {
            return 1;
        }
        for value in values.chunks_exact_mut(8) {
            let x = u64::from_ne_bytes([
                value[0], value[1], value[2], value[3], value[4], value[5], value[6], value[7],
            ]);
            value.copy_from_slice(&x.wrapping_mul(2).to_ne_bytes());
        }
        if !write_full(answers, values) {
            return 1;
        }
    }
}

impl Drop for RawPool {
    fn drop(&mut self) {
        for worker in &mut self.workers {
            // A zero count stops the worker.
            let _ = worker.requests.write_all(&0u64.to_ne_bytes());
        }
        for worker in &self.workers {
            let _ = waitpid(worker.pid, None);
        }
    }
}
