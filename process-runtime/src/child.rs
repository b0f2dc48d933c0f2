//! The life of a child, once started: become who it was told to be, run the task, report, and
//! end as Python's children do.

use std::io::Write;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::attach::Payload;
use crate::children;
use crate::current::{self, ChildIdentity};
use crate::panic;
use crate::spawn::Extras;
use crate::task::Outcome;
use crate::wire::{self, Bytes};

#[derive(Debug, Default)]
struct Channels {
    /// Where this process sends its reports: its own end of the channel its parent reads.
    reports: Option<wire::Sender>,
    /// What its parent gave it beyond the arguments (a pool worker's task queue).
    extras: Option<Extras>,
}

static CHANNELS: Mutex<Channels> = Mutex::new(Channels {
    reports: None,
    extras: None,
});

#[inline]
fn channels() -> MutexGuard<'static, Channels> {
    CHANNELS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Holds the channel lock across a fork (see [`crate::current::lock_for_fork`]).
pub(crate) fn lock_for_fork() -> ForkGuard {
    ForkGuard(channels())
}

/// The channels, locked across a fork.
#[derive(Debug)]
pub(crate) struct ForkGuard(MutexGuard<'static, Channels>);

impl ForkGuard {
    /// In a child just forked: drops the channels it inherited (its parent's, if the parent is
    /// itself a child), so that it never holds its parent's report channel open. Through the
    /// guard already held, and only if there are any: in a forked child, code run and pages
    /// written are page faults.
    #[inline]
    pub(crate) fn forked_child(mut self) {
        if self.0.reports.is_some() || self.0.extras.is_some() {
            *self.0 = Channels::default();
        }
    }
}

/// What this child's parent gave it beyond its arguments, once.
pub(crate) fn take_extras() -> Extras {
    channels().extras.take().unwrap_or_default()
}

/// A sender on this child's report channel, for reporting more than once (a pool worker).
pub(crate) fn reports() -> Option<wire::Sender> {
    channels().reports.clone()
}

/// Runs in a freshly started child: takes on `identity`, runs `work`, sends its report on
/// `reports`, and ends with the exit code `work` chose. (A forked child dropped the channels it
/// inherited at the fork: see [`ForkGuard::forked_child`].)
pub(crate) fn run(
    identity: ChildIdentity,
    reports: wire::Sender,
    extras: Extras,
    work: impl FnOnce() -> Outcome,
) -> ! {
    current::become_child(identity);
    // Installed by the parent before a fork; installed here in a re-executed child, which is
    // single-threaded at this point.
    panic::install_hook();
    panic::mark_child();
    // A task that calls `std::process::exit` still terminates its daemons and waits for its
    // other children.
    children::install_exit_handler();
    *channels() = Channels {
        reports: Some(reports),
        extras: Some(extras),
    };
    let outcome = work();
    let reports = channels().reports.take();
    if let Some(reports) = reports {
        // The parent may be gone; then nobody wants the report.
        let _ = reports.send(Payload {
            bytes: Bytes(outcome.report),
            shared: outcome.shared,
        });
    }
    finish(outcome.exit_code)
}

/// As [`run`], in a child forked to run a closure (a [`Process`](crate::Process) started by
/// `Fork`): the report goes on `reports`, a pipe (see [`oneshot`](crate::oneshot)).
///
/// The child has already taken on its identity (through the lock held across the fork), and the
/// parent installed the panic hook and the exit handler before the fork.
///
/// Inlined, as is what it calls here: each function the child runs from a different part of
/// the executable is a page fault (the child maps its parent's code anew, 64 KiB at a time).
#[inline(always)]
pub(crate) fn run_forked(reports: crate::oneshot::Sender, work: &mut crate::spawn::Closure) -> ! {
    panic::mark_child();
    // The channels inherited from the parent were dropped at the fork (`ForkGuard`).
    let exit_code = reports.send(work);
    end(exit_code)
}

/// Ends a child: terminate its daemons, wait for its other children, flush what it printed,
/// and exit without running the `atexit` handlers it may have inherited from its parent
/// (Python's children end with `os._exit` for the same reason).
pub(crate) fn finish(exit_code: i32) -> ! {
    *channels() = Channels::default();
    end(exit_code)
}

/// [`finish`], once the channels are gone.
#[inline]
fn end(exit_code: i32) -> ! {
    children::exit_children();
    // An error is dropped only if there is one: dropping a whole `Result` calls code elsewhere in
    // the executable (in a forked child, a page fault).
    if let Err(error) = std::io::stdout().flush() {
        drop(error);
    }
    if let Err(error) = std::io::stderr().flush() {
        drop(error);
    }
    crate::sys::exit_now(exit_code)
}
