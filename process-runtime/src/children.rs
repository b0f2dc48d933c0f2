//! The children of this process: waiting for them, signalling them, reaping the ones nobody
//! waits for, and what happens to them when this process exits.
//!
//! Every child is held by a pidfd, so waiting and signalling can never reach a recycled pid, and
//! its exit status is stored once, under a lock, by whichever thread reaps it first: a handle, the
//! reaper thread, or the exit handler. Nothing done per child looks at the other children: the
//! registry is a map, and the reaper thread learns from epoll which of its children ended. The
//! registry is tagged with the pid that owns it, so a forked child (ours or the user's `fork`)
//! never mistakes its parent's children for its own.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use crate::current::{ChildIdentity, ProcessInfo};
use crate::sys::{self, ExitStatus};

/// One child process.
#[derive(Debug)]
pub(crate) struct Child {
    pid: i32,
    pidfd: OwnedFd,
    /// Who it is. Only its name and whether it is a daemon are read; the rest is kept, not
    /// dropped, because a `Fork` parent would otherwise free it right after the fork, writing to
    /// pages the child still shares (see `spawn::fork::start`).
    identity: ChildIdentity,
    reaping: Mutex<Reaping>,
}

/// Whether a child has been reaped, and what is left to do when it is.
#[derive(Debug)]
enum Reaping {
    /// Not yet; what to do then, if anything.
    Pending(Option<ReapHook>),
    /// Reaped: how it ended.
    Reaped(ExitStatus),
}

impl Reaping {
    fn status(&self) -> Option<ExitStatus> {
        match self {
            Reaping::Pending(_) => None,
            Reaping::Reaped(status) => Some(*status),
        }
    }
}

/// Work left for when a child has been reaped (see [`Child::on_reap`]).
struct ReapHook(Box<dyn FnOnce() + Send>);

impl std::fmt::Debug for ReapHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReapHook")
    }
}

impl Child {
    pub(crate) fn new(pid: i32, pidfd: OwnedFd, identity: ChildIdentity) -> Arc<Self> {
        Arc::new(Child {
            pid,
            pidfd,
            identity,
            reaping: Mutex::new(Reaping::Pending(None)),
        })
    }

    /// Runs `hook` once the child has been reaped, by whoever reaps it; at once if it has been.
    pub(crate) fn on_reap(&self, hook: Box<dyn FnOnce() + Send>) {
        let mut reaping = self.reaping();
        match &mut *reaping {
            Reaping::Pending(slot) => *slot = Some(ReapHook(hook)),
            Reaping::Reaped(_) => {
                drop(reaping);
                hook();
            }
        }
    }

    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    pub(crate) fn name(&self) -> &str {
        &self.identity.name
    }

    pub(crate) fn is_daemon(&self) -> bool {
        self.identity.daemon
    }

    pub(crate) fn pidfd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    fn reaping(&self) -> MutexGuard<'_, Reaping> {
        self.reaping.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn info(&self) -> ProcessInfo {
        ProcessInfo::new(
            self.identity.name.clone(),
            self.pid as u32,
            self.identity.daemon,
        )
    }

    /// The exit status if the child has ended, reaping it if nobody has yet. Never blocks.
    pub(crate) fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        let mut reaping = self.reaping();
        if let Reaping::Reaped(status) = *reaping {
            return Ok(Some(status));
        }
        let Some(status) = sys::waitid_pidfd(self.pidfd.as_fd(), false)? else {
            return Ok(None);
        };
        let hook = match std::mem::replace(&mut *reaping, Reaping::Reaped(status)) {
            Reaping::Pending(hook) => hook,
            Reaping::Reaped(_) => None,
        };
        drop(reaping);
        forget(self);
        if let Some(ReapHook(hook)) = hook {
            hook();
        }
        Ok(Some(status))
    }

    /// Waits until the child ends or `deadline` passes (`None`: no deadline).
    pub(crate) fn wait_until(&self, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.reaping().status() {
            return Ok(Some(status));
        }
        loop {
            // The pidfd turns readable when the child ends; no lock is held while we wait, so
            // `is_alive` in another thread stays instant. Waited on first: a child that has
            // just sent its report is often still ending, and a `waitid` then would be wasted
            // (one that already ended costs this one `poll`).
            if !sys::wait_readable(self.pidfd.as_fd(), deadline)? {
                return Ok(None);
            }
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
        }
    }

    /// Waits until the child ends.
    pub(crate) fn wait(&self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.wait_until(None)? {
                return Ok(status);
            }
        }
    }

    /// Sends `signal`, unless the child has already been reaped.
    pub(crate) fn signal(&self, signal: i32) -> io::Result<()> {
        // Under the lock, so that it is not reaped meanwhile: a reaped child's pidfd refuses.
        let reaping = self.reaping();
        if reaping.status().is_some() {
            return Ok(());
        }
        sys::pidfd_send_signal(self.pidfd.as_fd(), signal)
    }
}

/// The children not yet reaped, by pid, each with the order it was registered in.
///
/// A map, not a list: every reap removes its child, and with hundreds of live children a scan of
/// a list (one pointer followed per child) was the only cost of a spawn + join that grew with
/// their number. The hasher has fixed keys, so that the empty map can be a `static`; pids are not
/// chosen by anyone who could make them collide on purpose.
type Children = HashMap<i32, (u64, Arc<Child>), BuildHasherDefault<DefaultHasher>>;

/// The children handed to the reaper thread, by the number their pidfd is registered under in
/// its epoll set. Not by pid: an entry lives until the reaper has seen it end, and by then its pid
/// may already belong to a newer detached child.
type Detached = HashMap<u64, Arc<Child>, BuildHasherDefault<DefaultHasher>>;

/// [`Registry::owner`] before any process claimed it.
const NOBODY: u32 = 0;

/// [`Registry::owner`], readable without the lock: [`exit_children`] in a child that started
/// none (most) then runs nothing else (in a forked child, code run is page faults).
static OWNER: AtomicU32 = AtomicU32::new(NOBODY);

#[derive(Debug, Default)]
struct Registry {
    /// The pid of the process these children belong to ([`NOBODY`] until one starts a child).
    owner: u32,
    children: Children,
    /// How many children were registered: the order of the next one.
    registered: u64,
    reaper: Option<Arc<Reaper>>,
    detached: Detached,
    /// How many children were detached: the number of the next one.
    detaches: u64,
}

impl Registry {
    /// The children in the order they were registered (a snapshot: the lock is not held while
    /// the caller waits for them).
    fn snapshot(&self) -> Vec<Arc<Child>> {
        let mut children: Vec<&(u64, Arc<Child>)> = self.children.values().collect();
        children.sort_unstable_by_key(|(order, _)| *order);
        children
            .into_iter()
            .map(|(_, child)| Arc::clone(child))
            .collect()
    }
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    owner: NOBODY,
    children: HashMap::with_hasher(BuildHasherDefault::new()),
    registered: 0,
    reaper: None,
    detached: HashMap::with_hasher(BuildHasherDefault::new()),
    detaches: 0,
});

/// The registry of this process; a registry inherited through `fork` is emptied first.
fn registry() -> MutexGuard<'static, Registry> {
    let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    let me = std::process::id();
    if registry.owner != me {
        // Inherited from the parent: its children and its reaper thread are not ours. They are
        // forgotten, not dropped: dropping them would write to every child's `Arc` and free its
        // name, copying a page shared with the parent for each, which made every `Fork` child
        // of a parent with 500 live children pay for all 500. All this process would gain is
        // closing its copies of their pidfds, which its exit does anyway (it keeps its copies
        // of their report channels open too).
        let inherited = std::mem::replace(
            &mut *registry,
            Registry {
                owner: me,
                ..Registry::default()
            },
        );
        OWNER.store(me, Ordering::Relaxed);
        std::mem::forget(inherited);
    }
    registry
}

/// Holds the registry lock across a fork (see [`crate::current::lock_for_fork`]).
pub(crate) fn lock_for_fork() -> ForkGuard {
    ForkGuard(REGISTRY.lock().unwrap_or_else(PoisonError::into_inner))
}

/// The registry, locked across a fork.
#[derive(Debug)]
pub(crate) struct ForkGuard(MutexGuard<'static, Registry>);

impl ForkGuard {
    /// Whether the registry lists children (of this process, or inherited from a parent that
    /// forked this one and not yet forgotten).
    pub(crate) fn has_children(&self) -> bool {
        !self.0.children.is_empty()
    }

    /// In a child just forked: the registry holds its parent's children, none of its own. Says
    /// so, without the system call that asks for this process's pid, so that a child that
    /// starts none has nothing to do in [`exit_children`].
    #[inline]
    pub(crate) fn forked_child(mut self) {
        let inherited = std::mem::take(&mut *self.0);
        OWNER.store(NOBODY, Ordering::Relaxed);
        // Forgotten, not dropped: see `registry`.
        std::mem::forget(inherited);
    }
}

/// Makes the registry this process's own before it starts a fork server, so that
/// [`exit_children`] stops the server even if no child is ever registered (registering one
/// claims the registry too).
pub(crate) fn claim() {
    drop(registry());
}

/// Records a new child, and makes sure the exit handler will see to it.
pub(crate) fn register(child: Arc<Child>) {
    install_exit_handler();
    let mut registry = registry();
    let order = registry.registered;
    registry.registered += 1;
    // A child still listed under this pid was reaped (its pid is free again) and is on its way
    // out through `forget`, which then leaves this one alone.
    registry.children.insert(child.pid, (order, child));
}

/// Removes `child`, just reaped, from the registry: only that child, not one registered since
/// under the same pid, which the kernel may have reused as soon as the reap freed it.
fn forget(child: &Child) {
    let mut registry = registry();
    if let Some((_, listed)) = registry.children.get(&child.pid) {
        if std::ptr::eq(Arc::as_ptr(listed), child) {
            registry.children.remove(&child.pid);
        }
    }
}

/// The children that are still running (Python's `multiprocessing.active_children()`); the
/// ones that ended are reaped on the way.
pub fn active_children() -> Vec<ProcessInfo> {
    let children = registry().snapshot();
    children
        .iter()
        .filter(|child| matches!(child.try_wait(), Ok(None)))
        .map(|child| child.info())
        .collect()
}

/// Hands a child whose handle is gone to the reaper thread, so that it never stays a zombie.
pub(crate) fn detach(child: Arc<Child>) {
    if !matches!(child.try_wait(), Ok(None)) {
        return;
    }
    let mut registry = registry();
    let reaper = match &registry.reaper {
        Some(reaper) => Arc::clone(reaper),
        None => match Reaper::start() {
            Ok(reaper) => {
                registry.reaper = Some(Arc::clone(&reaper));
                reaper
            }
            // No thread to reap it now: it stays in the registry, and the exit handler or
            // `active_children` reaps it later.
            Err(_) => return,
        },
    };
    let key = registry.detaches;
    registry.detaches += 1;
    // Added under the lock: the reaper looks the key up under it, so it finds the child even if
    // the child has already ended and epoll reports it at once.
    let event = EpollEvent::new(EpollFlags::EPOLLIN, key);
    if reaper.epoll.add(child.pidfd(), event).is_ok() {
        registry.detached.insert(key, child);
    }
    // Otherwise (out of memory), as above: it stays in the registry for the exit handler or
    // `active_children`.
}

/// A thread that waits on the pidfds of detached children and reaps each as it ends.
///
/// The pidfds are in an epoll set, registered once each, and each wake-up names the children
/// that ended: the cost of a child's end does not depend on how many others are detached. (A
/// `poll` of every pidfd, and a `waitid` on each, at every wake-up cost 500 `waitid`s per ended
/// child with 500 detached daemons.)
#[derive(Debug)]
struct Reaper {
    epoll: Epoll,
}

impl Reaper {
    fn start() -> io::Result<Arc<Self>> {
        let reaper = Arc::new(Reaper {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
        });
        let shared = Arc::clone(&reaper);
        std::thread::Builder::new()
            .name("process-tasks-reaper".to_owned())
            .spawn(move || shared.run())?;
        Ok(reaper)
    }

    fn run(&self) -> ! {
        let mut events = [EpollEvent::empty(); 32];
        loop {
            let ready = match self.epoll.wait(&mut events, EpollTimeout::NONE) {
                Ok(ready) => ready,
                Err(Errno::EINTR) => continue,
                // Cannot happen with a valid epoll descriptor and buffer; do not spin on it.
                Err(_) => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    continue;
                }
            };
            for event in &events[..ready] {
                let key = event.data();
                let Some(child) = registry().detached.get(&key).cloned() else {
                    continue;
                };
                // A readable pidfd means the child ended; `Ok(None)` only while the kernel has
                // yet to make it reapable, and epoll reports it again until it is.
                if matches!(child.try_wait(), Ok(None)) {
                    continue;
                }
                // Reaped, here or by whoever came first, or not ours to wait for (an error):
                // out of the set before its pidfd closes, since a copy of the pidfd in a forked
                // process would keep it there, readable for ever.
                let _ = self.epoll.delete(child.pidfd());
                registry().detached.remove(&key);
            }
        }
    }
}

/// Whether [`at_exit`] is registered in this address space. A registration survives `fork`, and
/// so does this flag; neither survives `exec`. A forked child thus inherits its parent's handler
/// (which acts on the registry of whichever process runs it) instead of adding its own.
static EXIT_HANDLER: AtomicBool = AtomicBool::new(false);

/// Installs [`at_exit`] with `atexit(3)`, once per address space. Called before every fork, so
/// that the forked child finds it installed and writes nothing to do so.
pub(crate) fn install_exit_handler() {
    // A load first: in a forked child, even a store of the same value would copy the page.
    if !EXIT_HANDLER.load(Ordering::Acquire) && !EXIT_HANDLER.swap(true, Ordering::AcqRel) {
        // SAFETY: `at_exit` is an `extern "C" fn()` that lives as long as the program.
        unsafe { libc::atexit(at_exit) };
    }
}

extern "C" fn at_exit() {
    EXITING.store(true, Ordering::Relaxed);
    exit_children();
}

/// Set once this process runs its exit handlers, after the C library has destroyed the main
/// thread's thread-locals.
static EXITING: AtomicBool = AtomicBool::new(false);

/// Whether this process is in its exit handlers: ipc-channel cannot send any more from the
/// thread running them, and whatever would be tidied up goes with the process anyway.
pub(crate) fn exiting() -> bool {
    EXITING.load(Ordering::Relaxed)
}

/// What a process does with its children when it ends normally, as Python does: daemons are
/// terminated, then every child is waited for. The fork server is stopped last.
#[inline]
pub(crate) fn exit_children() {
    // Nobody has claimed the registry: this process never started a child (most children).
    if OWNER.load(Ordering::Relaxed) != NOBODY {
        exit_claimed_children();
    }
}

/// [`exit_children`] in a process that has started children.
fn exit_claimed_children() {
    let children = registry().snapshot();
    for child in children.iter().filter(|child| child.identity.daemon) {
        let _ = child.signal(libc::SIGTERM);
    }
    for child in &children {
        let _ = child.wait();
    }
    crate::spawn::forkserver::shutdown();
}
