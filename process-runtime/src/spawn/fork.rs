//! Start method `Fork`: fork the calling process.

use std::cell::Cell;
use std::io::Write;

use super::{Job, Reports, Started, Work};
use crate::error::SpawnError;
use crate::sys::{self, Forked};
use crate::task::{self, EXIT_FAILURE};
use crate::{attach, child, oneshot};
use crate::{children, current};

/// Starts the child, on the calling thread (on the spawner thread for a daemon).
pub(super) fn start(job: Job) -> Result<Started, SpawnError> {
    let Job {
        identity,
        work,
        extras,
        ..
    } = job;
    // What the child would otherwise set up itself, in pages it shares with this process (every
    // page a child writes to is copied for it): set up here once, inherited by every fork.
    let _ = sys::dev_null();
    prime_ipc_buffers();
    // Every lock a forked child may take must be free in it: held here across the fork, so that
    // no other thread of this process holds it at that moment, and released on both sides. The
    // order is the one every other path takes them in: the fork server's, the spawner's, then
    // FORK_LOCK, which is taken before the report channel exists so no other fork copies it.
    let server = super::forkserver::lock_for_fork();
    let spawner = super::lock_spawner_for_fork();
    let fork_lock = super::FORK_LOCK
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Where the child will report, made now that no other fork can copy it; and, for encoded
    // arguments, holds on the spills the child reads them from.
    let (prepared, child_holds) = match work {
        // A closure reports once, on a pipe (see `oneshot`).
        Work::Closure(work) => {
            let (sender, receiver) =
                oneshot::pair().map_err(|e| SpawnError::os("create a pipe", e))?;
            (Prepared::Closure(work, sender, receiver), Vec::new())
        }
        Work::Encoded { task, payload } => {
            let (sender, receiver) =
                crate::wire::channel().map_err(|e| SpawnError::os("create a channel", e))?;
            let holds = attach::hold_for_child(&payload.shared);
            (Prepared::Encoded(task, payload, sender, receiver), holds)
        }
    };
    // Only a daemon checks that its parent is still there.
    let parent_pid = identity.daemon.then(|| std::process::id() as i32);

    // The locks the child must find unlocked: stdout and stderr (so that a child never blocks
    // forever on a print another thread was in the middle of) and the runtime's own. This thread
    // holds them across `fork`; both copies of the guards are dropped afterwards, which unlocks
    // them in the parent and in the child alike.
    let mut stdout = std::io::stdout().lock();
    // Whatever the parent printed without a newline would otherwise be printed twice.
    let _ = stdout.flush();
    let stderr = std::io::stderr().lock();
    let current = current::lock_for_fork();
    let registry = children::lock_for_fork();
    let only_child = !registry.has_children();
    let channels = child::lock_for_fork();
    let globals = crate::globals::hold_all_for_fork();
    let executable = super::bootstrap::lock_executable_for_fork();
    let spills = crate::spill::lock_for_fork();
    // SAFETY: the only locks the child touches before it runs the task are the ones held right
    // here by this thread, which is the thread the child continues as; the child drops its copies
    // of the guards first thing. What the task itself does after a fork of a multi-threaded
    // parent is the documented risk of this start method.
    let forked = unsafe { sys::fork() };
    drop((spills, executable, stderr, stdout));
    globals.release();
    drop((fork_lock, spawner, server));
    let pid = match forked {
        Ok(Forked::Child) => {
            registry.forked_child();
            channels.forked_child();
            in_child(prepared, identity, current, child_holds, extras, parent_pid)
        }
        Ok(Forked::Parent(pid)) => pid,
        Err(error) => {
            drop((registry, channels, current));
            attach::drop_for_child(child_holds);
            return Err(SpawnError::os("fork", error));
        }
    };
    drop((registry, channels, current));
    if only_child {
        // A child started while no other one runs is most often waited for at once (a task run
        // in another process for isolation, one after the other). Let it go first: on a small
        // machine the kernel mostly puts it on this CPU, where it would wait until this thread
        // blocks, and every page this thread writes meanwhile would be copied (the child still
        // shares it). A short task then ends before this thread continues, and its report and
        // its end are there when `join` looks, with no wake-up. Not with other children running:
        // a fan-out of many would give a time slice to each child already running.
        let _ = nix::sched::sched_yield();
    }
    // What this process no longer needs is dropped later where it can be: a page this process
    // writes to while the child still shares it is copied, and the child, which often waits on
    // the same CPU for this thread to block, starts that much later. The identity goes to the
    // child's record, the report buffer becomes the buffer its report is read into.
    drop(extras);
    let reports = match prepared {
        Prepared::Closure(work, sender, receiver) => {
            // The closure holds the caller's arguments, which are the child's now.
            drop(work);
            Reports::Pipe(receiver.keep_buffer(sender))
        }
        Prepared::Encoded(_, _, sender, receiver) => {
            drop(sender);
            Reports::Channel(receiver)
        }
    };
    let pidfd = sys::pidfd_open(pid).map_err(|e| SpawnError::os("open a pidfd", e))?;
    Ok(Started {
        pid,
        pidfd,
        reports,
        identity,
    })
}

/// The child's side of [`start`], right after the fork, with the locks it must release (but the
/// identity lock, through which it takes on `identity`) released. Inlined: see
/// [`child::run_forked`].
#[inline(always)]
fn in_child(
    prepared: Prepared,
    identity: current::ChildIdentity,
    current: current::ForkGuard,
    child_holds: Vec<crate::spill::Hold>,
    extras: super::Extras,
    parent_pid: Option<i32>,
) -> ! {
    if let Some(parent_pid) = parent_pid {
        let _ = sys::set_parent_death_signal(libc::SIGKILL);
        if sys::getppid() != parent_pid {
            sys::exit_now(EXIT_FAILURE);
        }
    }
    sys::stdin_from_dev_null();
    // The parent's end is closed here, so that a report to a parent that has died fails instead
    // of filling a pipe that only this child could read.
    match prepared {
        Prepared::Closure(mut work, sender, receiver) => {
            receiver.close_in_child();
            current.become_child(identity);
            child::run_forked(sender, &mut *work)
        }
        Prepared::Encoded(task, payload, sender, receiver) => {
            drop((receiver, current));
            match task::lookup(task) {
                Ok(entry) => {
                    let holds = attach::adopt(child_holds);
                    child::run(identity, sender, extras, move || {
                        let outcome = entry.run_to_outcome(&payload.bytes.0, payload.shared);
                        // The spills are read: released.
                        drop(holds);
                        outcome
                    })
                }
                Err(_) => sys::exit_now(EXIT_FAILURE),
            }
        }
    }
}

/// The work, and where the child will report, made before the fork.
enum Prepared {
    /// A closure, which reports once, on a pipe (a `Process`).
    Closure(Box<super::Closure>, oneshot::Sender, oneshot::Receiver),
    /// A registered task and its encoded arguments, which report on a channel (a pool worker,
    /// which reports many times).
    Encoded(
        &'static str,
        crate::attach::Payload,
        crate::wire::Sender,
        crate::wire::Receiver,
    ),
}

thread_local! {
    /// Whether this thread has used ipc-channel's per-thread buffers (see [`prime_ipc_buffers`]).
    static PRIMED: Cell<bool> = const { Cell::new(false) };
}

/// Uses ipc-channel's per-thread buffers once on the calling thread, by sending a message to
/// itself. Their first use registers thread-local destructors (an allocation, a lock of the
/// dynamic loader): a child forked from this thread continues as a copy of it and finds them
/// registered, instead of doing so itself when it sends on a channel (a pool worker's reports, a
/// report's shared objects), writing to half a dozen pages it shares with this process.
pub(crate) fn prime_ipc_buffers() {
    if PRIMED.get() {
        return;
    }
    if let Ok((sender, receiver)) = ipc_channel::ipc::channel::<()>() {
        if sender.send(()).is_ok() {
            let _ = receiver.recv();
        }
    }
    PRIMED.set(true);
}
