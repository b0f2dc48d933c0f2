//! Start method `Spawn`: execute this program again and run only the task in it.

use super::bootstrap::{self, Body, Role};
use super::{Job, Reports, Start, Started};
use crate::error::SpawnError;
use crate::globals::Snapshot;
use crate::sys;
use crate::task::{self, EXIT_FAILURE};

/// Executes the child and hands it its task, on the calling thread (on the spawner thread for a
/// daemon).
pub(super) fn start(job: Job, globals: Snapshot) -> Result<Started, SpawnError> {
    // From here until the child has its end of the report channel (see `FORK_LOCK`).
    let _handover = super::FORK_LOCK
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (reports_tx, reports) =
        crate::wire::channel().map_err(|e| SpawnError::os("create a channel", e))?;
    let identity = job.identity.clone();
    let start = job.into_start(reports_tx, globals)?;
    let launched = bootstrap::launch(Role::Child, Some(&start.task))?;
    let (pid, pidfd) = launched.complete(Body::Child(Box::new(start)))?;
    Ok(Started {
        pid,
        pidfd,
        reports: Reports::Channel(reports),
        identity,
    })
}

/// Runs in the re-executed child once the handshake is done.
pub(super) fn run_child(start: Start) -> ! {
    if !start.identity.daemon {
        // Only daemons die with their parent; the others outlive it, as in Python.
        let _ = sys::set_parent_death_signal(0);
    }
    let Ok(entry) = task::lookup(&start.task) else {
        // Checked before the handshake; unreachable unless the table changed under us.
        sys::exit_now(EXIT_FAILURE);
    };
    start.run(entry)
}
