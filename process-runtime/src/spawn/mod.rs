//! Starting a child: the three start methods behind one entry point, [`spawn`].
//!
//! Children are started on the calling thread, with two rules:
//!
//! - **The parent-death signal follows a thread.** Linux delivers `PR_SET_PDEATHSIG` when the
//!   *thread* that created a child ends, not the process. A daemon started from a short-lived
//!   thread (a test, a request handler) would be killed when that thread returned. So a daemon
//!   made by `fork` or `Spawn`, and the fork server (whose clones count as children of the thread
//!   that started it), are started by one long-lived thread of the process, the spawner, which
//!   never returns: for them, "the parent died" means the process died.
//! - **No stray copies of a child's channel.** A child's end of its report channel exists in the
//!   parent only between its creation and its handover; that span holds [`FORK_LOCK`] for
//!   reading, and every `fork` holds it for writing. So no child forked meanwhile inherits it,
//!   and the channel closes when the child ends (unless the child itself forked a process that
//!   keeps it: `join` watches the child's pidfd too).

pub(crate) mod bootstrap;
mod exec;
mod fork;
pub(crate) mod forkserver;

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde::{Deserialize, Serialize};

use crate::StartMethod;
use crate::attach::{Attachments, Payload};
use crate::children::{self, Child};
use crate::current::ChildIdentity;
use crate::error::SpawnError;
use crate::globals::Snapshot;
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
    /// encoded on the way in. It encodes its report after what the buffer holds, gathers the
    /// report's attachments, and returns the exit code.
    /// Called once; `FnMut` so that the child can call it without freeing the box (a free in the
    /// child writes to pages it shares with its parent).
    Closure(Box<Closure>),
}

/// A closure run in a forked child: encodes the report after what the buffer holds, gathers the
/// report's attachments, and returns the exit code.
pub(crate) type Closure = dyn FnMut(&mut Vec<u8>, &mut Attachments) -> i32 + Send;

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

/// A started child and where its reports will arrive.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) child: Arc<Child>,
    pub(crate) reports: Reports,
}

/// Where a child's reports arrive.
#[derive(Debug)]
pub(crate) enum Reports {
    /// A channel: for a child sent its work (a pool worker, which reports many times).
    Channel(wire::Receiver),
    /// A pipe: for a forked child running a closure, which reports once (see
    /// [`oneshot`](crate::oneshot)).
    Pipe(crate::oneshot::Receiver),
}

impl Reports {
    /// The channel, for a child that reports on one.
    pub(crate) fn into_channel(self) -> Option<wire::Receiver> {
        match self {
            Reports::Channel(channel) => Some(channel),
            Reports::Pipe(_) => None,
        }
    }
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

impl Job {
    /// What a child that is not a fork of this process receives: the job's encoded work, with
    /// `reports`, the child's end of its report channel, and `globals`, the parent's changed
    /// `process_global`s. Such a child cannot run a closure.
    pub(crate) fn into_start(
        self,
        reports: wire::Sender,
        globals: Snapshot,
    ) -> Result<Start, SpawnError> {
        let Work::Encoded { task, payload } = self.work else {
            return Err(SpawnError::Bootstrap {
                reason: "a closure can only run in a forked child".to_owned(),
            });
        };
        let Job {
            identity, extras, ..
        } = self;
        // Each shared object is a descriptor beside the message, and ipc-channel panics beyond
        // its limit: the arguments are held to half a message, but the globals are not.
        let attached = payload.shared.len() + globals.attachments();
        if attached > crate::attach::MAX_PER_MESSAGE {
            return Err(SpawnError::Encode {
                task,
                source: crate::codec::encode_error(format!(
                    "the arguments and the changed process_globals hold {attached} shared \
                     objects or large byte strings, and a child can be sent at most {}: group \
                     them in an Array or a Queue, or pass them to the task instead",
                    crate::attach::MAX_PER_MESSAGE
                )),
            });
        }
        Ok(Start {
            task: task.to_owned(),
            payload,
            identity,
            reports,
            extras,
            globals,
        })
    }
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

/// A piece of work for the spawner thread.
type Errand = Box<dyn FnOnce() + Send>;

/// The spawner thread of this process, tagged with the pid it belongs to.
static SPAWNER: Mutex<Option<(u32, mpsc::Sender<Errand>)>> = Mutex::new(None);

/// Held for reading from the moment a child's end of its report channel exists in this process
/// until it has been handed over (to the child or the fork server), and for writing across every
/// `fork`: so that no forked child ever inherits another child's report channel.
pub(crate) static FORK_LOCK: RwLock<()> = RwLock::new(());

/// Starts a child as `job` says. Refused in a daemon.
///
/// Most children are started on the calling thread. Two kinds go through the spawner thread (see
/// the module docs): a daemon made by `fork` or `Spawn`, whose parent-death signal must follow
/// a thread that lives as long as the process, and the fork server itself.
pub(crate) fn spawn(job: Job) -> Result<Spawned, SpawnError> {
    if crate::current::is_daemon() {
        return Err(SpawnError::DaemonCannotHaveChildren);
    }
    // Before any fork: a forked child must find the hook installed (see `panic`), and the exit
    // handler too, which it would otherwise register itself, writing to pages it shares with
    // this process (each written page is a copy).
    crate::panic::install_hook();
    children::install_exit_handler();
    let daemon = job.identity.daemon;
    // A forked child has the values already; any other needs them sent, as they are now.
    // Taken here, on the calling thread, which may be inside a global's update (`GlobalBusy`).
    let globals = match job.method {
        StartMethod::Fork => Snapshot::default(),
        StartMethod::Spawn | StartMethod::ForkServer => crate::globals::snapshot()?,
    };
    let started = match job.method {
        StartMethod::Fork | StartMethod::Spawn if daemon => {
            on_spawner(move || start(job, globals))??
        }
        _ => start(job, globals)?,
    };
    let child = Child::new(started.pid, started.pidfd, started.identity);
    children::register(Arc::clone(&child));
    Ok(Spawned {
        child,
        reports: started.reports,
    })
}

/// What a start method produced before it was wrapped into a registered [`Child`].
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) pid: i32,
    pub(crate) pidfd: std::os::fd::OwnedFd,
    pub(crate) reports: Reports,
    /// Who the child is, for its record.
    pub(crate) identity: ChildIdentity,
}

/// Runs `errand` on this process's spawner thread and returns what it returned.
pub(crate) fn on_spawner<R: Send + 'static>(
    errand: impl FnOnce() -> R + Send + 'static,
) -> Result<R, SpawnError> {
    let gone = || SpawnError::Bootstrap {
        reason: "the spawner thread is gone".to_owned(),
    };
    let (reply_tx, reply_rx) = mpsc::sync_channel(1);
    spawner()?
        .send(Box::new(move || {
            let _ = reply_tx.send(errand());
        }))
        .map_err(|_| gone())?;
    reply_rx.recv().map_err(|_| gone())
}

/// Holds the spawner's lock across a fork (see [`crate::current::lock_for_fork`]).
pub(crate) fn lock_spawner_for_fork() -> std::sync::MutexGuard<'static, impl Sized> {
    SPAWNER.lock().unwrap_or_else(PoisonError::into_inner)
}

fn spawner() -> Result<mpsc::Sender<Errand>, SpawnError> {
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
    let (sender, errands) = mpsc::channel::<Errand>();
    std::thread::Builder::new()
        .name("process-tasks-spawner".to_owned())
        // A forked child continues on a copy of this thread's stack; give it a main thread's.
        .stack_size(8 << 20)
        .spawn(move || {
            for errand in errands {
                errand();
            }
        })
        .map_err(|error| SpawnError::os("start the spawner thread", error))?;
    *slot = Some((me, sender.clone()));
    Ok(sender)
}

fn start(job: Job, globals: Snapshot) -> Result<Started, SpawnError> {
    match job.method {
        StartMethod::Fork => fork::start(job),
        StartMethod::Spawn => exec::start(job, globals),
        StartMethod::ForkServer => forkserver::start(job, globals),
    }
}
