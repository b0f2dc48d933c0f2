//! Start method `ForkServer`, the default: a small single-threaded process forks every child.
//!
//! # Lifecycle
//!
//! The first `ForkServer` spawn of a process starts its server by re-executing the program (see
//! [`bootstrap`](super::bootstrap)); the server never reaches `main`, so it holds nothing but the
//! runtime, a single thread and a few pages of memory. Each spawn sends it a request over an
//! ipc-channel; the server forks with `clone(CLONE_PARENT)`, so the new process is a child of the
//! *requesting* process, not of the server: the requester waits for it, signals it, sees it in
//! `active_children()`, and `getppid()` in the child names the requester. The child runs the task
//! from the request and reports straight to the requester on the channel the request carried.
//!
//! The server ends when its request channel closes (the requester dropped it or died) and, since
//! it has `PR_SET_PDEATHSIG`, when the requester dies. At normal exit the requester stops and
//! reaps it after its children. A forked copy of the requester does not share its server: the
//! server's children would become the requester's. Each process starts its own server, when it
//! first needs one.
//!
//! # Why it is the default
//!
//! It is safe in a multi-threaded parent (the server has one thread and no locks held), unlike
//! `Fork`; and it is fast, unlike `Spawn`: forking a process that has touched a few hundred
//! kilobytes costs a fraction of forking a large parent, and nothing is executed or initialised
//! again per child.

use std::os::fd::OwnedFd;
use std::sync::{Mutex, PoisonError};

use ipc_channel::ipc::{self, IpcReceiver, IpcSender};
use serde::{Deserialize, Serialize};

use super::bootstrap::{self, Body, Role};
use super::{Job, Start, Started, Work};
use crate::error::SpawnError;
use crate::sys::{self, Forked, ThreadRecords};
use crate::task::{self, EXIT_FAILURE, Lookup};

/// What the server receives once, at its handshake.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ServerStart {
    requests: IpcReceiver<Request>,
    replies: IpcSender<Reply>,
}

impl ServerStart {
    #[cfg(test)]
    pub(crate) fn new(requests: IpcReceiver<Request>, replies: IpcSender<Reply>) -> Self {
        ServerStart { requests, replies }
    }
}

/// Fork a child that runs `start`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Request {
    start: Start,
    /// The requester's pid: a daemon child checks that it is still its parent.
    parent_pid: i32,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    Started(i32),
    Missing,
    Ambiguous,
    Failed(String),
}

/// The requester's side of its server.
#[derive(Debug)]
struct Server {
    owner: u32,
    pidfd: OwnedFd,
    requests: IpcSender<Request>,
    replies: IpcReceiver<Reply>,
}

static SERVER: Mutex<Option<Server>> = Mutex::new(None);

/// Asks this process's fork server (started first if need be) to fork the child.
pub(super) fn start(job: Job) -> Result<Started, SpawnError> {
    let Work::Encoded { task, payload } = job.work else {
        return Err(SpawnError::Bootstrap {
            reason: "a closure cannot be sent to the fork server".to_owned(),
        });
    };
    let mut slot = SERVER.lock().unwrap_or_else(PoisonError::into_inner);
    let me = std::process::id();
    let alive = slot.as_ref().is_some_and(|server| {
        server.owner == me && !sys::has_ended(std::os::fd::AsFd::as_fd(&server.pidfd))
    });
    if !alive {
        if let Some(old) = slot.take() {
            if old.owner == me {
                // Our server died: reap it. (One inherited through fork is not ours to reap.)
                let _ = sys::waitid_pidfd(std::os::fd::AsFd::as_fd(&old.pidfd), false);
            } else {
                std::mem::forget(old);
            }
        }
        // Started by the spawner thread: the server's clones are children of the thread that
        // started it, and their parent-death signal must follow a thread that never ends.
        *slot = Some(super::on_spawner(launch)??);
    }
    // From here until the request, with our end of the report channel, is sent.
    let handover = super::FORK_LOCK
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    let (reports_tx, reports) =
        crate::wire::channel().map_err(|e| SpawnError::os("create a channel", e))?;
    let request = Request {
        start: Start {
            task: task.to_owned(),
            payload,
            identity: job.identity,
            reports: reports_tx,
            extras: job.extras,
            globals: job.globals,
        },
        parent_pid: me as i32,
    };
    let server = slot.as_ref().expect("set above");
    let lost = |error: String| SpawnError::Bootstrap {
        reason: format!("the fork server is gone: {error}"),
    };
    let sent = server.requests.send(request);
    drop(handover);
    if let Err(error) = sent {
        *slot = None;
        return Err(lost(error.to_string()));
    }
    // The server holds the only other copy of the report sender until it has forked.
    match server.replies.recv() {
        Ok(Reply::Started(pid)) => {
            let pidfd = sys::pidfd_open(pid).map_err(|e| SpawnError::os("open a pidfd", e))?;
            Ok(Started {
                pid,
                pidfd,
                reports,
            })
        }
        Ok(Reply::Missing) => Err(SpawnError::NotRegistered {
            name: task.to_owned(),
            executable: "the fork server's executable".to_owned(),
        }),
        Ok(Reply::Ambiguous) => Err(SpawnError::AmbiguousName {
            name: task.to_owned(),
        }),
        Ok(Reply::Failed(error)) => Err(SpawnError::Os {
            what: "fork in the fork server".to_owned(),
            source: std::io::Error::other(error),
        }),
        Err(error) => {
            *slot = None;
            Err(lost(error.to_string()))
        }
    }
}

fn launch() -> Result<Server, SpawnError> {
    let launched = bootstrap::launch(Role::ForkServer, None)?;
    let (requests, server_requests) =
        ipc::channel().map_err(|e| SpawnError::os("create a channel", e))?;
    let (server_replies, replies) =
        ipc::channel().map_err(|e| SpawnError::os("create a channel", e))?;
    let (_, pidfd) = launched.complete(Body::ForkServer(ServerStart {
        requests: server_requests,
        replies: server_replies,
    }))?;
    Ok(Server {
        owner: std::process::id(),
        pidfd,
        requests,
        replies,
    })
}

/// Stops and reaps this process's fork server, if it has one. Called at exit.
pub(crate) fn shutdown() {
    let server = SERVER.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(server) = server {
        if server.owner == std::process::id() {
            let _ = sys::pidfd_send_signal(std::os::fd::AsFd::as_fd(&server.pidfd), libc::SIGKILL);
            let _ = sys::waitid_pidfd(std::os::fd::AsFd::as_fd(&server.pidfd), true);
        } else {
            std::mem::forget(server);
        }
    }
}

/// The server's loop. Runs in the re-executed server process, which has one thread.
pub(super) fn serve(start: ServerStart) -> ! {
    let records = ThreadRecords::of_current_thread();
    let mut channels = Some((start.requests, start.replies));
    loop {
        let request = match channels.as_ref().map(|(requests, _)| requests.recv()) {
            Some(Ok(request)) => request,
            // The requester closed the channel or died.
            _ => sys::exit_now(0),
        };
        let reply = match task::lookup(&request.start.task) {
            Err(Lookup::Missing) => Reply::Missing,
            Err(Lookup::Ambiguous) => Reply::Ambiguous,
            // SAFETY: this process has a single thread (the server never starts one), and
            // `records` were read on it.
            Ok(entry) => match unsafe { sys::clone_as_sibling(&records) } {
                Ok(Forked::Child) => {
                    // The server's channels are not the child's business.
                    drop(channels.take());
                    run_child(request, entry)
                }
                Ok(Forked::Parent(pid)) => Reply::Started(pid),
                Err(error) => Reply::Failed(error.to_string()),
            },
        };
        // The request was dropped above, closing the server's copy of the report sender.
        let sent = channels.as_ref().map(|(_, replies)| replies.send(reply));
        if !matches!(sent, Some(Ok(()))) {
            sys::exit_now(0);
        }
    }
}

fn run_child(request: Request, entry: &'static task::TaskEntry) -> ! {
    let Request { start, parent_pid } = request;
    if start.identity.daemon {
        let _ = sys::set_parent_death_signal(libc::SIGKILL);
        if sys::getppid() != parent_pid {
            sys::exit_now(EXIT_FAILURE);
        }
    }
    start.run(entry)
}
