//! Who this process is: [`current_process`], [`parent_process`], and the names given to children.

use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

/// What a process knows about a process: its name, pid and daemon flag (the attributes of
/// Python's `current_process()`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    name: String,
    pid: u32,
    daemon: bool,
}

impl ProcessInfo {
    pub(crate) fn new(name: String, pid: u32, daemon: bool) -> Self {
        ProcessInfo { name, pid, daemon }
    }

    /// The name: `MainProcess`, `Process-1`, `Process-1:2`, `PoolWorker-3`, or the name given to
    /// the builder.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id, as `std::process::id()` returns it in that process.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether it is a daemon.
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }
}

/// Who a child is: sent to it when it starts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ChildIdentity {
    pub(crate) name: String,
    pub(crate) identity: Vec<u32>,
    pub(crate) daemon: bool,
    pub(crate) parent: ProcessInfo,
}

#[derive(Debug)]
pub(crate) struct Me {
    name: String,
    /// Python's `_identity`: `[]` for the main process, `[1]` for its first child, `[1, 2]` for
    /// that child's second child.
    identity: Vec<u32>,
    daemon: bool,
    parent: Option<ProcessInfo>,
    children_started: u32,
}

static ME: Mutex<Option<Me>> = Mutex::new(None);

fn me() -> MutexGuard<'static, Option<Me>> {
    ME.lock().unwrap_or_else(PoisonError::into_inner)
}

fn with_me<T>(f: impl FnOnce(&mut Me) -> T) -> T {
    let mut guard = me();
    let me = guard.get_or_insert_with(|| Me {
        name: "MainProcess".to_owned(),
        identity: Vec::new(),
        daemon: false,
        parent: None,
        children_started: 0,
    });
    f(me)
}

/// The calling process: `MainProcess` in the program that started first, the child's name in a
/// child (Python's `multiprocessing.current_process()`).
///
/// ```
/// let me = process_runtime::current_process();
/// assert_eq!(me.pid(), std::process::id());
/// ```
pub fn current_process() -> ProcessInfo {
    with_me(|me| ProcessInfo::new(me.name.clone(), std::process::id(), me.daemon))
}

/// The process that started this one, or `None` in the main process (Python's
/// `multiprocessing.parent_process()`). Its pid is the one `getppid()` returns in this process
/// under every start method.
pub fn parent_process() -> Option<ProcessInfo> {
    with_me(|me| me.parent.clone())
}

/// Whether the calling process is a daemon.
pub(crate) fn is_daemon() -> bool {
    with_me(|me| me.daemon)
}

/// Names the next child as Python does: `<prefix>-<identity joined by ':'>`, where the identity
/// is this process's identity followed by a per-process counter.
pub(crate) fn next_child(prefix: &str, name: Option<String>, daemon: bool) -> ChildIdentity {
    with_me(|me| {
        me.children_started += 1;
        let mut identity = me.identity.clone();
        identity.push(me.children_started);
        let name = name.unwrap_or_else(|| {
            let numbers: Vec<String> = identity.iter().map(u32::to_string).collect();
            format!("{prefix}-{}", numbers.join(":"))
        });
        ChildIdentity {
            name,
            identity,
            daemon,
            parent: ProcessInfo::new(me.name.clone(), std::process::id(), me.daemon),
        }
    })
}

/// Makes this process the child `identity` describes.
pub(crate) fn become_child(identity: ChildIdentity) {
    ForkGuard(me()).become_child(identity);
}

/// Holds the identity lock across a fork, so that the child's copy of it is not left locked by a
/// thread that does not exist there.
pub(crate) fn lock_for_fork() -> ForkGuard {
    ForkGuard(me())
}

/// The identity, locked across a fork.
#[derive(Debug)]
pub(crate) struct ForkGuard(MutexGuard<'static, Option<Me>>);

impl ForkGuard {
    /// Makes this process the child `identity` describes, through the lock already held (in a
    /// forked child, taking it again would be more code to fault in).
    ///
    /// What was there before (the identity a forked child copied from its parent) is forgotten,
    /// not freed: freeing writes to the allocator's pages, which a forked child shares with its
    /// parent until it writes to them, and a few bytes once per process are cheaper than those
    /// copies.
    #[inline(always)]
    pub(crate) fn become_child(mut self, identity: ChildIdentity) {
        let inherited = self.0.replace(Me {
            name: identity.name,
            identity: identity.identity,
            daemon: identity.daemon,
            parent: Some(identity.parent),
            children_started: 0,
        });
        std::mem::forget(inherited);
    }
}
