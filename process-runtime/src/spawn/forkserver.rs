//! Start method `ForkServer`, the default: a small single-threaded process forks every child.
//!
//! # Lifecycle
//!
//! The first `ForkServer` spawn of a process starts its server by re-executing the program (see
//! [`bootstrap`](super::bootstrap)); the server never reaches `main`, so it holds nothing but the
//! runtime, a single thread and a few pages of memory. It keeps two *spare* children, cloned in
//! advance with `clone(CLONE_PARENT)`, waiting on the request channel: a spare is a child of
//! the *requesting* process, not of the server, so the requester waits for it, signals it, sees
//! it in `active_children()`, and `getppid()` in it names the requester. A request goes straight
//! to the spare, which answers with its pid, tells the server, and runs the task from the
//! request, reporting to the requester on the channel the request carried; the server meanwhile
//! clones a replacement, off the requester's path.
//!
//! The server ends when its request channel closes (the requester dropped it or died) and, since
//! it has `PR_SET_PDEATHSIG`, when the requester dies; so does a waiting spare. At normal exit the
//! requester stops and reaps the server after its children. A forked copy of the requester does
//! not share its server: the server's children would become the requester's. Each process starts
//! its own server, when it first needs one.

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
use super::{Job, Reports, Start, Started};
use crate::error::SpawnError;
use crate::globals::Snapshot;
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

/// What a requester asks of a spare.
#[derive(Debug, Serialize, Deserialize)]
#[allow(
    clippy::large_enum_variant,
    reason = "made only to be sent at once, never stored; boxing would cost every spawn an allocation"
)]
pub(crate) enum Request {
    /// Become a child that runs `start`.
    Start {
        start: Start,
        /// The requester's pid: a daemon child checks that it is still its parent.
        parent_pid: i32,
    },
    /// Exit, saying so with your pid: the requester is giving up on its server, and reaps the
    /// spares it left (they are the requester's children, see the module's documentation).
    Quit,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The child runs, with this pid.
    Started(i32),
    /// The task is not registered; the spare that found out (this pid) exits.
    Missing(i32),
    /// The task's name is registered twice; the spare (this pid) exits.
    Ambiguous(i32),
    Failed(String),
    /// A spare (this pid) took a [`Request::Quit`] and exits.
    Quitting(i32),
}

/// The requester's side of its server.
#[derive(Debug)]
struct Server {
    owner: u32,
    pidfd: OwnedFd,
    /// The program the server runs, whose tasks it can start.
    program: std::path::PathBuf,
    requests: IpcSender<Request>,
    replies: IpcReceiver<Reply>,
}

static SERVER: Mutex<Option<Server>> = Mutex::new(None);

/// How long a requester waits for the server's answer before it gives up on the server.
const REPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Asks this process's fork server (started first if need be) to fork the child.
pub(super) fn start(job: Job, globals: Snapshot) -> Result<Started, SpawnError> {
    let me = std::process::id();
    let mut slot = SERVER.lock().unwrap_or_else(PoisonError::into_inner);
    if !is_alive(&slot, me) {
        // Started by the spawner thread: the server's clones are children of the thread that
        // started it, and their parent-death signal must follow a thread that never ends. The
        // lock is not held meanwhile: the spawner thread may be forking, and a fork takes it.
        drop(slot);
        let launched = super::on_spawner(launch)??;
        slot = SERVER.lock().unwrap_or_else(PoisonError::into_inner);
        if is_alive(&slot, me) {
            // Another thread started one meanwhile.
            stop(launched);
        } else {
            if let Some(old) = slot.replace(launched) {
                stop(old);
            }
        }
    }
    // From here until the request, with our end of the report channel, is sent.
    let handover = super::FORK_LOCK
        .read()
        .unwrap_or_else(PoisonError::into_inner);
    let (reports_tx, reports) =
        crate::wire::channel().map_err(|e| SpawnError::os("create a channel", e))?;
    let identity = job.identity.clone();
    let start = job.into_start(reports_tx, globals)?;
    let task = start.task.clone();
    let request = Request::Start {
        start,
        parent_pid: me as i32,
    };
    let server = slot.as_ref().expect("set above");
    let sent = server.requests.send(request);
    drop(handover);
    if let Err(error) = sent {
        return Err(give_up(&mut slot, error));
    }
    // The server holds the only other copy of the report sender until it has forked.
    // A spare answers at once; the limit is only against a server that stopped answering.
    let reply =
        match crate::wire::recv_until(&server.replies, std::time::Instant::now() + REPLY_TIMEOUT) {
            Ok(reply) => reply,
            Err(error) => return Err(give_up(&mut slot, error)),
        };
    match reply {
        Reply::Started(pid) => {
            let pidfd = sys::pidfd_open(pid).map_err(|e| SpawnError::os("open a pidfd", e))?;
            Ok(Started {
                pid,
                pidfd,
                reports: Reports::Channel(reports),
                identity,
            })
        }
        Reply::Missing(pid) => {
            reap(pid, false, None);
            Err(SpawnError::NotRegistered {
                name: task,
                executable: server.program.display().to_string(),
            })
        }
        Reply::Ambiguous(pid) => {
            reap(pid, false, None);
            Err(SpawnError::AmbiguousName { name: task })
        }
        Reply::Failed(error) => Err(SpawnError::Os {
            what: "start a child in the fork server".to_owned(),
            source: std::io::Error::other(error),
        }),
        Reply::Quitting(pid) => {
            // Only a requester giving up on its server asks a spare to quit.
            reap(pid, false, None);
            Err(give_up(
                &mut slot,
                "a spare quit instead of starting the child",
            ))
        }
    }
}

/// Reaps a child of this process that the server cloned (a spare, or a child it started for a
/// request given up on): SIGKILLed first if `kill` (nobody will read it), waited for until
/// `deadline` at most (`None`: until it ends; a spare that answered exits right after).
fn reap(pid: i32, kill: bool, deadline: Option<std::time::Instant>) {
    let Ok(pidfd) = sys::pidfd_open(pid) else {
        return;
    };
    let pidfd = std::os::fd::AsFd::as_fd(&pidfd);
    if kill {
        let _ = sys::pidfd_send_signal(pidfd, libc::SIGKILL);
    }
    if sys::wait_readable(pidfd, deadline).unwrap_or(false) {
        let _ = sys::waitid_pidfd(pidfd, true);
    }
}

fn launch() -> Result<Server, SpawnError> {
    crate::children::claim();
    let launched = bootstrap::launch(Role::ForkServer, None)?;
    let program = launched.program.clone();
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
        program,
        requests,
        replies,
    })
}

/// Stops and reaps this process's fork server, if it has one. Called at exit, when the spares it
/// leaves need no reaping: they end with the channel, and this process ends too.
pub(crate) fn shutdown() {
    let server = SERVER.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(server) = server {
        kill(&server);
    }
}

/// Whether `slot` holds a running server of this process, whose pid is `me`.
fn is_alive(slot: &Option<Server>, me: u32) -> bool {
    slot.as_ref().is_some_and(|server| {
        server.owner == me && !sys::has_ended(std::os::fd::AsFd::as_fd(&server.pidfd))
    })
}

/// Gives up on the server in `slot`, which failed with `error`: killed and reaped, not only
/// dropped (it is not in the children registry, and a dropped handle would leave it a zombie).
fn give_up(slot: &mut Option<Server>, error: impl std::fmt::Display) -> SpawnError {
    if let Some(lost) = slot.take() {
        stop(lost);
    }
    SpawnError::Bootstrap {
        reason: format!("the fork server is gone: {error}"),
    }
}

/// How long [`stop`] waits for the spares of a server it gave up on to say they quit. They
/// answer at once; this only bounds a spare that cannot (stopped by a debugger, say).
const QUIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Kills and reaps a server of this process, then has its spares quit and reaps them too (they
/// are this process's children, outside the children registry: left alone, each would end
/// when the request channel closes and stay a zombie as long as this process lives). Forgets a
/// server inherited through fork, which is not ours to touch.
fn stop(server: Server) {
    if server.owner != std::process::id() {
        std::mem::forget(server);
        return;
    }
    // The server first, so that it clones no spare to replace one that quits.
    kill(&server);
    for _ in 0..SPARES {
        // Fails once no spare holds the other end.
        if server.requests.send(Request::Quit).is_err() {
            break;
        }
    }
    let deadline = std::time::Instant::now() + QUIT_TIMEOUT;
    // Each spare answers once: to a quit, or to the start request that was given up on.
    let mut answered = 0;
    while answered < SPARES {
        match crate::wire::recv_until(&server.replies, deadline) {
            Ok(Reply::Quitting(pid) | Reply::Missing(pid) | Reply::Ambiguous(pid)) => {
                // It exits right after it answers: a moment even if the time is up, and no
                // longer (a spare stopped in between would hold this up).
                let moment = std::time::Instant::now() + std::time::Duration::from_millis(200);
                reap(pid, false, Some(deadline.max(moment)))
            }
            Ok(Reply::Started(pid)) => reap(pid, true, None),
            Ok(Reply::Failed(_)) => {}
            // No spare left to answer, or the time is up.
            Err(_) => break,
        }
        answered += 1;
    }
}

/// Kills and reaps a server of this process.
fn kill(server: &Server) {
    if server.owner == std::process::id() {
        let _ = sys::pidfd_send_signal(std::os::fd::AsFd::as_fd(&server.pidfd), libc::SIGKILL);
        let _ = sys::waitid_pidfd(std::os::fd::AsFd::as_fd(&server.pidfd), true);
    }
}

/// Holds the server's lock across a fork (see [`crate::current::lock_for_fork`]): a request in
/// flight on another thread would otherwise leave it locked in the child for ever.
pub(crate) fn lock_for_fork() -> std::sync::MutexGuard<'static, impl Sized> {
    SERVER.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a spare tells the server.
#[derive(Debug, Serialize, Deserialize)]
enum Note {
    /// It took a request: time to make the next spare.
    Taken,
    /// The request channel closed: the requester is gone.
    Closed,
}

/// How many spares the server keeps waiting. Two: a spare is taken by a request, and its
/// replacement takes as long to clone as a whole spawn + join of a small task, so with one, a
/// requester starting children back to back found the replacement not ready one time in two and
/// waited for the clone. With two, the next request finds the other.
const SPARES: usize = 2;

/// The server's loop. Runs in the re-executed server process, which has one thread.
///
/// The server does not read requests itself: it keeps [`SPARES`] *spare* children, cloned in
/// advance, waiting on the request channel (each request goes to exactly one of them). A request
/// goes straight to a spare, which answers the requester and becomes the child; meanwhile the
/// server clones a replacement. The clone, the longest step of a start, is thus off the
/// requester's path.
pub(super) fn serve(start: ServerStart) -> ! {
    let records = ThreadRecords::of_current_thread();
    let requester = sys::getppid();
    // Done once here and inherited by every child, instead of done in each (where every page
    // written is a copy): the panic hook, the exit handler, the index of the task table,
    // the per-thread lists of ipc-channel and of `attach` (whose first use registers a destructor),
    // standard output's buffer, and /dev/null.
    crate::panic::install_hook();
    crate::children::install_exit_handler();
    let _ = task::lookup("");
    super::fork::prime_ipc_buffers();
    crate::attach::providing(Vec::new(), || ());
    let _ = std::io::stdout();
    let _ = sys::dev_null();
    let ServerStart { requests, replies } = start;
    let Ok(notes) = ipc::IpcReceiverSet::new() else {
        answer_one_with(
            &requests,
            &replies,
            "could not create a set in the fork server",
        );
        sys::exit_now(0);
    };
    let mut channels = Channels {
        requests,
        replies,
        notes,
    };
    // The spares waiting, by the id of their note channel in the set.
    let mut waiting = std::collections::HashSet::new();
    loop {
        while waiting.len() < SPARES {
            match clone_spare(&records, &mut channels.notes) {
                Ok(Cloned::Waiting(id)) => {
                    waiting.insert(id);
                }
                Ok(Cloned::Spare(note)) => {
                    let Channels {
                        requests,
                        replies,
                        notes,
                    } = channels;
                    // The other spares' notes are not this one's business.
                    drop(notes);
                    spare(requests, replies, note, requester)
                }
                // None waiting: the next request would wait for ever; it gets the failure.
                Err(reason) if waiting.is_empty() => {
                    answer_one_with(&channels.requests, &channels.replies, &reason)
                }
                // Tried again when a waiting one is taken.
                Err(_) => break,
            }
        }
        let Ok(events) = channels.notes.select() else {
            sys::exit_now(0);
        };
        for event in events {
            match event {
                ipc::IpcSelectionResult::MessageReceived(id, message) => {
                    waiting.remove(&id);
                    if let Ok(Note::Closed) = message.to::<Note>() {
                        sys::exit_now(0);
                    }
                }
                // It died before taking a request (or, taken, dropped its end): make another.
                ipc::IpcSelectionResult::ChannelClosed(id) => {
                    waiting.remove(&id);
                }
            }
        }
    }
}

/// What the server holds: the requester's channels, and the notes of its spares.
struct Channels {
    requests: IpcReceiver<Request>,
    replies: IpcSender<Reply>,
    notes: ipc::IpcReceiverSet,
}

/// What [`clone_spare`] returns on each side of the clone.
enum Cloned {
    /// In the server: the spare's id in the notes.
    Waiting(u64),
    /// In the spare: where it says it took a request.
    Spare(IpcSender<Note>),
}

/// Clones a spare that waits for a request, and adds the channel on which it will say it took
/// one to `notes`; or says why there is no spare.
fn clone_spare(records: &ThreadRecords, notes: &mut ipc::IpcReceiverSet) -> Result<Cloned, String> {
    let (note_tx, note_rx) = ipc::channel::<Note>()
        .map_err(|_| "could not create a channel in the fork server".to_owned())?;
    // SAFETY: this process has a single thread (the server never starts one), and `records`
    // were read on it.
    match unsafe { sys::clone_as_sibling(records) } {
        Ok(Forked::Child) => {
            drop(note_rx);
            Ok(Cloned::Spare(note_tx))
        }
        Ok(Forked::Parent(_)) => {
            // The spare holds the only sender left: its death closes the channel.
            drop(note_tx);
            notes
                .add(note_rx)
                .map(Cloned::Waiting)
                .map_err(|error| format!("could not watch a spare in the fork server: {error}"))
        }
        Err(error) => Err(format!("could not fork in the fork server: {error}")),
    }
}

/// When no spare can be made: answers the next request with the failure, so that the requester
/// gets an error instead of waiting for a spare that will not come.
fn answer_one_with(requests: &IpcReceiver<Request>, replies: &IpcSender<Reply>, reason: &str) {
    let answered =
        requests.recv().is_ok() && replies.send(Reply::Failed(reason.to_owned())).is_ok();
    if !answered {
        sys::exit_now(0);
    }
}

/// A spare: waits for one request, answers it, and becomes the child it asks for.
fn spare(
    requests: IpcReceiver<Request>,
    replies: IpcSender<Reply>,
    note: IpcSender<Note>,
    requester: i32,
) -> ! {
    // Until it has work, a spare dies with the requester, whatever else holds the request
    // channel open (a forked copy of the requester does).
    let _ = sys::set_parent_death_signal(libc::SIGKILL);
    if sys::getppid() != requester {
        sys::exit_now(0);
    }
    let Ok(request) = requests.recv() else {
        let _ = note.send(Note::Closed);
        sys::exit_now(0);
    };
    let me = std::process::id() as i32;
    let Request::Start { start, parent_pid } = request else {
        let _ = replies.send(Reply::Quitting(me));
        sys::exit_now(0);
    };
    let entry = task::lookup(&start.task);
    let reply = match entry {
        Ok(_) => Reply::Started(me),
        Err(Lookup::Missing) => Reply::Missing(me),
        Err(Lookup::Ambiguous) => Reply::Ambiguous(me),
    };
    let _ = replies.send(reply);
    let _ = note.send(Note::Taken);
    // The server's channels are not the child's business.
    drop((requests, replies, note));
    match entry {
        Ok(entry) => run_child(start, parent_pid, entry),
        Err(_) => sys::exit_now(EXIT_FAILURE),
    }
}

fn run_child(start: Start, parent_pid: i32, entry: &'static task::TaskEntry) -> ! {
    if start.identity.daemon {
        if sys::getppid() != parent_pid {
            sys::exit_now(EXIT_FAILURE);
        }
    } else {
        // Only daemons die with their parent; the others outlive it, as in Python.
        let _ = sys::set_parent_death_signal(0);
    }
    start.run(entry)
}
