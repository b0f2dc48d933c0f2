//! The operating-system calls the runtime needs and `nix` does not wrap: pidfds, `waitid` on a
//! pidfd, `clone` with `CLONE_PARENT`, the parent-death signal. Every `unsafe` block of the
//! runtime that talks to the kernel is here.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitStatus {
    /// It exited with this code.
    Exited(i32),
    /// This signal killed it.
    Signaled(i32),
}

impl ExitStatus {
    /// Python's `exitcode`: `N` for exit code `N`, `-N` for signal `N`.
    pub(crate) fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(signal) => -signal,
        }
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exit code {code}"),
            ExitStatus::Signaled(signal) => {
                write!(
                    f,
                    "signal {signal} ({})",
                    crate::error::signal_name(*signal)
                )
            }
        }
    }
}

/// Opens a pidfd for `pid`, which must be a child of this process not yet waited for, so that the
/// pid cannot have been reused.
pub(crate) fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new file descriptor or -1; it touches
    // no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `signal` to the process behind `pidfd`. A process that already ended (even if not yet
/// waited for) is not an error.
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: the descriptor is valid for the call (borrowed); a null siginfo is allowed and means
    // "as kill(2) would send it".
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        let error = io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        return Err(error);
    }
    Ok(())
}

/// Waits for the child behind `pidfd` to end and reaps it. With `block == false`, returns
/// `Ok(None)` at once if it is still running.
pub(crate) fn waitid_pidfd(pidfd: BorrowedFd<'_>, block: bool) -> io::Result<Option<ExitStatus>> {
    let flags = libc::WEXITED | if block { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: siginfo_t is plain data for which all-zero bytes are a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t; the descriptor is valid for the call.
        let rc = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                flags,
            )
        };
        if rc < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        // SAFETY: waitid succeeded, so `info` holds either zeroes (WNOHANG, nothing to report) or
        // a SIGCHLD record whose pid and status fields are initialised.
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        return Ok(Some(match info.si_code {
            libc::CLD_EXITED => ExitStatus::Exited(status),
            _ => ExitStatus::Signaled(status),
        }));
    }
}

/// Waits until `fd` is readable (or hung up) or `deadline` passes. Returns whether it is ready:
/// `false` only at the deadline.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> io::Result<bool> {
    wait_any_readable([fd], deadline).map(|[ready]| ready)
}

/// Waits until one of `fds` is readable (or hung up) or `deadline` passes. Returns which are
/// ready: none only at the deadline.
pub(crate) fn wait_any_readable<const N: usize>(
    fds: [BorrowedFd<'_>; N],
    deadline: Option<Instant>,
) -> io::Result<[bool; N]> {
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                // Round up so that a deadline a few microseconds away is not busy-polled.
                let millis = left.as_micros().div_ceil(1000);
                PollTimeout::try_from(millis.min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::MAX)
            }
        };
        let mut pollfds = fds.map(|fd| PollFd::new(fd, PollFlags::POLLIN));
        match poll(&mut pollfds, timeout) {
            Ok(0) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok([false; N]);
                }
            }
            Ok(_) => {
                return Ok(pollfds.map(|fd| fd.revents().is_some_and(|r| !r.is_empty())));
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// Makes the calling thread's child receive `signal` when that thread ends, or clears it with 0.
///
/// Async-signal-safe: callable between `fork` and `exec`.
pub(crate) fn set_parent_death_signal(signal: i32) -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number by value and touches no memory.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The parent's pid. Async-signal-safe.
pub(crate) fn getppid() -> i32 {
    // SAFETY: getppid cannot fail and touches no memory.
    unsafe { libc::getppid() }
}

/// Ends the process at once with `code`, without running `atexit` handlers or destructors.
#[inline]
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and is always safe to call.
    unsafe { libc::_exit(code) }
}

/// Fills a buffer with random bytes from the kernel.
pub(crate) fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    let mut filled = 0;
    while filled < N {
        // SAFETY: the pointer and length describe the unfilled tail of `buf`.
        let n = unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), N - filled, 0) };
        if n < 0 {
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        } else {
            filled += n as usize;
        }
    }
    Ok(buf)
}

/// `/dev/null`, opened once per process (close-on-exec) and inherited by forked children, so that
/// a child puts it on its standard input with one `dup2` instead of an `open` and a `close` (whose
/// path handling also writes to pages the child shares with its parent). Opened by a parent before
/// it forks ([`stdin_from_dev_null`] opens it itself if not).
pub(crate) fn dev_null() -> Option<BorrowedFd<'static>> {
    static DEV_NULL: std::sync::OnceLock<Option<OwnedFd>> = std::sync::OnceLock::new();
    DEV_NULL
        .get_or_init(|| std::fs::File::open("/dev/null").ok().map(OwnedFd::from))
        .as_ref()
        .map(AsFd::as_fd)
}

/// Points standard input at `/dev/null`, as Python does in every child, so that a child never
/// competes with its parent for the terminal.
#[inline]
pub(crate) fn stdin_from_dev_null() {
    if let Some(null) = dev_null() {
        // SAFETY: dup2 onto descriptor 0 replaces stdin atomically (the copy is not close-on-exec);
        // `null` stays open, owned by the static.
        unsafe { libc::dup2(null.as_raw_fd(), 0) };
    }
}

/// What a fork-like call returned in the process that made it.
#[derive(Debug)]
pub(crate) enum Forked {
    /// This is the new process.
    Child,
    /// This is the old process; the new one has this pid.
    Parent(i32),
}

/// `fork(2)` through the C library, so that its `atfork` handlers run.
///
/// # Safety
///
/// In a multi-threaded process the child may only rely on what the forking thread owned: a lock
/// held by another thread at the time of the fork stays locked in the child forever. The caller
/// makes sure the child touches no such lock.
pub(crate) unsafe fn fork() -> io::Result<Forked> {
    // SAFETY: the caller upholds the contract above.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Addresses the C library registered for the calling thread, read once in the fork server so
/// that each child it clones can register them again (what glibc's `fork` does for itself).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ThreadRecords {
    tid_address: usize,
    robust_head: usize,
    robust_len: usize,
}

impl ThreadRecords {
    /// Reads the calling thread's records. Fields that the kernel does not report stay zero and
    /// are skipped later.
    pub(crate) fn of_current_thread() -> Self {
        let mut tid_address: usize = 0;
        // SAFETY: PR_GET_TID_ADDRESS writes one pointer-sized value through the pointer given.
        let rc = unsafe {
            libc::prctl(
                libc::PR_GET_TID_ADDRESS,
                &mut tid_address as *mut usize,
                0,
                0,
                0,
            )
        };
        if rc < 0 {
            tid_address = 0;
        }
        let mut robust_head: usize = 0;
        let mut robust_len: libc::size_t = 0;
        // SAFETY: get_robust_list(0, ..) writes the calling thread's list head and its length
        // through the two pointers, which are valid and writable.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_get_robust_list,
                0,
                &mut robust_head as *mut usize,
                &mut robust_len as *mut libc::size_t,
            )
        };
        if rc < 0 {
            robust_head = 0;
            robust_len = 0;
        }
        ThreadRecords {
            tid_address,
            robust_head,
            robust_len,
        }
    }
}

/// Forks the calling (single-threaded) process so that the new process becomes a child of the
/// caller's *parent*, not of the caller (`clone(CLONE_PARENT)`). The fork server uses it so that
/// every child it makes belongs to the process that asked for it: that process can wait for it,
/// see it in `getppid()`, and take it down with it.
///
/// # Safety
///
/// The caller must be single-threaded, and `records` must have been read in this same thread by
/// [`ThreadRecords::of_current_thread`]. The C library's `atfork` handlers do not run.
pub(crate) unsafe fn clone_as_sibling(records: &ThreadRecords) -> io::Result<Forked> {
    let mut flags = libc::CLONE_PARENT as libc::c_ulong | libc::SIGCHLD as libc::c_ulong;
    if records.tid_address != 0 {
        // Have the kernel store the child's thread id where the C library caches it, as glibc's
        // own fork does, so that the child's C library knows its thread by its own id.
        flags |= (libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID) as libc::c_ulong;
    }
    // SAFETY: with no CLONE_VM and no new stack, clone behaves as fork: the child continues on a
    // copy of this stack. The caller is single-threaded, so no lock is held by a thread that will
    // not exist in the child. The tid address points into this thread's own control block, which
    // the child has a copy of at the same address.
    let rc = unsafe { raw_clone(flags, records.tid_address) };
    match rc {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            if records.robust_head != 0 {
                // SAFETY: the kernel does not carry the robust-futex list over to a new process;
                // register this thread's list again, at the address the C library keeps it at
                // (copied with the rest of memory).
                unsafe {
                    libc::syscall(
                        libc::SYS_set_robust_list,
                        records.robust_head,
                        records.robust_len,
                    )
                };
            }
            Ok(Forked::Child)
        }
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// `clone(2)` with no new stack, no parent tid and no TLS; architectures disagree on where the
/// child-tid argument goes.
///
/// # Safety
///
/// As for [`clone_as_sibling`].
unsafe fn raw_clone(flags: libc::c_ulong, child_tid: usize) -> libc::c_long {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: x86-64 order: flags, stack, parent_tid, child_tid, tls. Upheld by the caller.
    let rc = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, child_tid, 0usize) };
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: the order of ARM, AArch64, x86-32, PowerPC and MIPS: flags, stack, parent_tid, tls,
    // child_tid. Upheld by the caller.
    let rc = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, child_tid) };
    rc
}

/// Whether the process behind `pidfd` has ended (its pidfd is readable). Never blocks.
pub(crate) fn has_ended(pidfd: BorrowedFd<'_>) -> bool {
    !matches!(wait_readable(pidfd, Some(Instant::now())), Ok(false))
}
