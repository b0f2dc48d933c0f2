//! Starting a child: the three start methods behind one entry point, [`spawn`].
//!
//! Every child of a process is started by one long-lived thread of that process, the spawner.
//! Two reasons:
//!
//! - **The parent-death signal.** Linux delivers `PR_SET_PDEATHSIG` when the *thread* that
//!   created a child ends, not the process. A daemon child started from a short-lived thread (a
//!   test, a request handler) would be killed when that thread returned. The spawner never
//!   returns, so "the parent died" means the process died.
//! - **No stray copies of a child's channel.** A child's end of its result channel exists in the
//!   parent only between its creation and the child's start; because one thread does both for
//!   every child, no other child forked meanwhile can inherit it, and the parent sees the channel
//!   close exactly when the child ends.

pub(crate) mod bootstrap;
mod exec;
mod fork;
pub(crate) mod forkserver;

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::StartMethod;
use crate::attach::Payload;
use crate::children::{self, Child};
use crate::current::ChildIdentity;
use crate::error::SpawnError;
use crate::globals::Snapshot;
use crate::task::Outcome;
use crate::wire;

/// What to run in the child.
pub(crate) enum Work {
    /// A registered task, from its encoded `(task, args)`.
    Encoded {
        /// The task's registered name.
        task: &'static str,
        /// `(task, args)`, encoded.
        payload: Payload,
    },
    /// A closure, run in a forked copy of this process (start method `Fork` only): nothing is
    /// encoded on the way in.
    Closure(Box<dyn FnOnce() -> Outcome + Send>),
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Work::Encoded { task, payload } => {
                write!(
                    f,
                    "Encoded {{ task: {task}, payload: {} bytes }}",
                    payload.bytes.0.len()
                )
            }
            Work::Closure(_) => f.write_str("Closure"),
        }
    }
}

/// A request to start one child.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) method: StartMethod,
    pub(crate) identity: ChildIdentity,
    pub(crate) work: Work,
    /// What the child gets besides its arguments.
    pub(crate) extras: Extras,
    /// The parent's changed `process_global`s, filled in by [`spawn`].
    pub(crate) globals: Snapshot,
}

/// What a child can be given besides its arguments, for the runtime's own long-lived children
/// (pool workers); it finds them with [`crate::child::take_extras`].
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Extras {
    /// A channel to receive more work on.
    pub(crate) inbox: Option<ipc_channel::ipc::IpcReceiver<Payload>>,
    /// Memory shared with the parent.
    pub(crate) shared: Option<ipc_channel::ipc::IpcSharedMemory>,
}

/// A started child and the channel its report will arrive on.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) child: Arc<Child>,
    pub(crate) reports: wire::Receiver,
}

/// What a child started by re-execution or by the fork server receives.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Start {
    pub(crate) task: String,
    pub(crate) payload: Payload,
    pub(crate) identity: ChildIdentity,
    pub(crate) reports: wire::Sender,
    pub(crate) extras: Extras,
    /// The parent's changed `process_global`s.
    pub(crate) globals: Snapshot,
}

impl Start {
    /// Runs the task this `Start` describes, in the child it was sent to: installs the parent's
    /// globals, then decodes the arguments and runs `entry`.
    pub(crate) fn run(self, entry: &'static crate::task::TaskEntry) -> ! {
        let Start {
            payload,
            identity,
            reports,
            extras,
            globals,
            ..
        } = self;
        crate::child::run(
            identity,
            reports,
            extras,
            move || match crate::globals::restore(globals) {
                Ok(()) => entry.run_to_outcome(&payload.bytes.0, payload.shared),
                Err(reason) => {
                    crate::task::encode_report::<()>(&crate::task::Report::Failed(reason))
                }
            },
        )
    }
}

type Reply = mpsc::SyncSender<Result<Started, SpawnError>>;
type Requests = mpsc::Sender<(Job, Reply)>;

/// The spawner thread of this process, tagged with the pid it belongs to.
static SPAWNER: Mutex<Option<(u32, Requests)>> = Mutex::new(None);

/// Starts a child as `job` says. Refused in a daemon.
pub(crate) fn spawn(mut job: Job) -> Result<Spawned, SpawnError> {
    if crate::current::is_daemon() {
        return Err(SpawnError::DaemonCannotHaveChildren);
    }
    // Before any fork: a forked child must find the hook installed (see `panic`).
    crate::panic::install_hook();
    let (name, daemon) = (job.identity.name.clone(), job.identity.daemon);
    // A forked child has the values already; any other needs them sent, as they are now.
    job.globals = match job.method {
        StartMethod::Fork => Snapshot::default(),
        StartMethod::Spawn | StartMethod::ForkServer => crate::globals::snapshot()?,
    };
    let (reply_tx, reply_rx) = mpsc::sync_channel(1);
    spawner()?
        .send((job, reply_tx))
        .map_err(|_| SpawnError::Bootstrap {
            reason: "the spawner thread is gone".to_owned(),
        })?;
    let (pid, pidfd, reports) = match reply_rx.recv() {
        Ok(result) => {
            let started = result?;
            (started.pid, started.pidfd, started.reports)
        }
        Err(_) => {
            return Err(SpawnError::Bootstrap {
                reason: "the spawner thread is gone".to_owned(),
            });
        }
    };
    let child = Child::new(pid, pidfd, name, daemon);
    children::register(Arc::clone(&child));
    Ok(Spawned { child, reports })
}

/// What a start method produced before it was wrapped into a registered [`Child`].
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) pid: i32,
    pub(crate) pidfd: std::os::fd::OwnedFd,
    pub(crate) reports: wire::Receiver,
}

fn spawner() -> Result<Requests, SpawnError> {
    let mut slot = SPAWNER.lock().unwrap_or_else(PoisonError::into_inner);
    let me = std::process::id();
    if let Some((owner, sender)) = slot.as_ref() {
        if *owner == me {
            return Ok(sender.clone());
        }
    }
    // None yet, or the one inherited through `fork`, whose thread does not exist here: it is
    // forgotten, not dropped, since its internals may be mid-operation in that copy.
    if let Some(inherited) = slot.take() {
        std::mem::forget(inherited);
    }
    let (sender, requests) = mpsc::channel::<(Job, Reply)>();
    std::thread::Builder::new()
        .name("process-tasks-spawner".to_owned())
        .spawn(move || {
            for (job, reply) in requests {
                let _ = reply.send(start(job));
            }
        })
        .map_err(|error| SpawnError::os("start the spawner thread", error))?;
    *slot = Some((me, sender.clone()));
    Ok(sender)
}

/// Runs on the spawner thread.
fn start(job: Job) -> Result<Started, SpawnError> {
    match job.method {
        StartMethod::Fork => fork::start(job),
        StartMethod::Spawn => exec::start(job),
        StartMethod::ForkServer => forkserver::start(job),
    }
}
