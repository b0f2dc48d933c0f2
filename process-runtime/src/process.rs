//! [`Process`], the handle of a child, and [`Builder`], which starts one.

use std::marker::PhantomData;
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_channel::{IpcError, TryRecvError};

use crate::attach;
use crate::children::{self, Child};
use crate::current;
use crate::error::{ProcessError, SpawnError};
use crate::oneshot::Received;
use crate::spawn::{self, Job, Reports, Work};
use crate::start_method::{StartMethod, get_start_method};
use crate::sys::ExitStatus;
use crate::task::{self, Task, encode_call, run_caught};
use crate::wire;

/// Options for starting a child: its name, whether it is a daemon, and how it is started.
///
/// Made by [`Process::builder`]; [`spawn`](Builder::spawn) starts the child.
///
/// ```
/// use process_runtime::prelude::*;
///
/// #[process_task]
/// fn greet(name: String) -> String {
///     format!("{name} runs in {}", current_process().name())
/// }
///
/// let p = Process::builder(greet).name("test").daemon(true).spawn("neo".to_string())?;
/// assert_eq!(p.name(), "test");
/// assert_eq!(p.join()?, "neo runs in test");
/// # Ok::<(), process_runtime::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `spawn` is called"]
pub struct Builder<T> {
    task: T,
    name: Option<String>,
    daemon: bool,
    start_method: Option<StartMethod>,
}

impl<T: Task> Builder<T> {
    /// Names the child (Python's `name=`). The default is `Process-N`, numbered from 1 in each
    /// process, and `Process-N:M` for the children of child `N`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Makes the child a daemon (Python's `daemon = True`): it is terminated when this process
    /// exits, killed if this process dies, and may not start children of its own.
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// Chooses how the child is started, overriding [`set_start_method`](crate::set_start_method).
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = Some(method);
        self
    }

    /// Starts the child with `args` (`()` for none, the value for one, a tuple for several) and
    /// returns its handle (Python's `Process(...)` followed by `start()`).
    ///
    /// # Errors
    ///
    /// [`SpawnError`] says why the child could not start: this process is a daemon, the OS
    /// refused (limits, memory), the arguments did not encode, or the task is not registered in
    /// the child's executable.
    pub fn spawn(self, args: T::Args) -> Result<Process<T::Output>, SpawnError> {
        if current::is_daemon() {
            return Err(SpawnError::DaemonCannotHaveChildren);
        }
        let method = self.start_method.unwrap_or_else(get_start_method);
        let work = match method {
            StartMethod::Fork => {
                let task = self.task;
                let mut call = Some((task, args));
                Work::Closure(Box::new(move |out, shared| match call.take() {
                    Some((task, args)) => {
                        task::encode_report_attached(&run_caught(task, args), out, shared)
                    }
                    None => task::EXIT_FAILURE,
                }))
            }
            StartMethod::Spawn | StartMethod::ForkServer => {
                let payload = attach::encode_with(|out| encode_call(&self.task, &args, out))
                    .map_err(|source| SpawnError::Encode {
                        task: T::NAME,
                        source,
                    })?;
                task::recycle(args);
                Work::Encoded {
                    task: T::NAME,
                    payload,
                }
            }
        };
        let identity = current::next_child("Process", self.name, self.daemon);
        let spawned = spawn::spawn(Job {
            method,
            identity,
            work,
            extras: Default::default(),
        })?;
        Ok(Process::new(spawned.child, spawned.reports))
    }
}

/// A child process running a task that returns `R` (Python's `multiprocessing.Process`).
///
/// Dropping the handle does not stop the child; it goes on running and is reaped when it ends,
/// so it never becomes a zombie. If it is not a daemon, this process still waits for it when it
/// exits, as Python does.
#[derive(Debug)]
pub struct Process<R> {
    child: Arc<Child>,
    report: ReportState,
    _output: PhantomData<fn() -> R>,
}

/// Where the child's one report is.
#[derive(Debug)]
enum ReportState {
    /// Not read yet: where it will come.
    Pending(Reports),
    /// Read: the report, or `None` if the channel closed without one (the child ended without
    /// sending it).
    Received(Option<attach::Payload>),
    /// Read and taken by `join` or `join_timeout`.
    Taken,
}

impl<R> Process<R> {
    /// Starts building a child that will run `task`.
    pub fn builder<T: Task<Output = R>>(task: T) -> Builder<T> {
        Builder {
            task,
            name: None,
            daemon: false,
            start_method: None,
        }
    }

    fn new(child: Arc<Child>, reports: Reports) -> Self {
        Process {
            child,
            report: ReportState::Pending(reports),
            _output: PhantomData,
        }
    }

    /// The child's process id (Python's `p.pid`).
    pub fn pid(&self) -> u32 {
        self.child.pid() as u32
    }

    /// The child's name (Python's `p.name`).
    pub fn name(&self) -> &str {
        self.child.name()
    }

    /// Whether the child is a daemon (Python's `p.daemon`).
    pub fn is_daemon(&self) -> bool {
        self.child.is_daemon()
    }

    /// Whether the child is still running (Python's `p.is_alive()`). A child that ended is
    /// reaped here.
    pub fn is_alive(&self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The exit code (Python's `p.exitcode`): `None` while the child runs, `N` once it exited
    /// with code `N` (0 after a task that returned, 1 after a panic), `-N` once signal `N`
    /// killed it.
    pub fn exitcode(&self) -> Option<i32> {
        self.child.try_wait().ok().flatten().map(ExitStatus::code)
    }

    /// Asks the child to stop with `SIGTERM` (Python's `p.terminate()`). Nothing happens if it
    /// has already ended.
    ///
    /// # Errors
    ///
    /// Only if the OS refuses the signal.
    pub fn terminate(&self) -> Result<(), ProcessError> {
        self.signal(libc::SIGTERM)
    }

    /// Kills the child with `SIGKILL` (Python's `p.kill()`). Nothing happens if it has already
    /// ended.
    ///
    /// # Errors
    ///
    /// Only if the OS refuses the signal.
    pub fn kill(&self) -> Result<(), ProcessError> {
        self.signal(libc::SIGKILL)
    }

    fn signal(&self, signal: i32) -> Result<(), ProcessError> {
        self.child
            .signal(signal)
            .map_err(|source| ProcessError::Os {
                what: "signal the child",
                source,
            })
    }

    /// A descriptor that becomes readable when the child ends (Python's `p.sentinel`), to wait
    /// for several children at once with `poll` or an event loop. It is a pidfd.
    pub fn sentinel(&self) -> BorrowedFd<'_> {
        self.child.pidfd()
    }

    /// Waits for the child to end, without taking its value (Python's `p.join()`, which returns
    /// nothing): afterwards [`is_alive`](Process::is_alive) is false, [`exitcode`](Process::exitcode)
    /// is set, and [`join`](Process::join) returns the value at once.
    ///
    /// # Errors
    ///
    /// Only if waiting itself fails (an OS or IPC error), not for how the child ended: that is
    /// for `join` to say.
    pub fn wait(&mut self) -> Result<(), ProcessError> {
        self.wait_for_end().map(|_| ())
    }

    /// Waits at most `timeout` for the child to end, without taking its value (Python's
    /// `p.join(timeout)`); returns whether it has ended.
    ///
    /// # Errors
    ///
    /// As for [`wait`](Process::wait).
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<bool, ProcessError> {
        self.wait_until(deadline_after(timeout))
            .map(|status| status.is_some())
    }

    /// Reads the report (or the end of the channel) and then reaps the child. The report comes
    /// first: a child blocked sending a large one would never end if we waited for it to end
    /// before reading.
    fn wait_for_end(&mut self) -> Result<ExitStatus, ProcessError> {
        self.receive_until(None)?;
        self.child.wait().map_err(waiting_failed)
    }

    /// As [`wait_for_end`](Process::wait_for_end), until `deadline` (`None`: no deadline);
    /// `Ok(None)` if the child has not ended by then.
    fn wait_until(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<ExitStatus>, ProcessError> {
        if !self.receive_until(deadline)? {
            return Ok(None);
        }
        self.child.wait_until(deadline).map_err(waiting_failed)
    }

    /// Waits for the report, or the end of the channel, until `deadline` (`None`: no deadline);
    /// `Ok(false)` if neither has come by then.
    fn receive_until(&mut self, deadline: Option<Instant>) -> Result<bool, ProcessError> {
        let child = self.child.pidfd();
        let received = match &mut self.report {
            ReportState::Pending(Reports::Channel(channel)) => {
                receive_until(channel, child, deadline)
            }
            ReportState::Pending(Reports::Pipe(pipe)) => match pipe.receive(child, deadline) {
                Ok(Received::Report(report)) => Some(Ok(report)),
                Ok(Received::Nothing) => Some(Err(IpcError::Disconnected)),
                Ok(Received::NotYet) => None,
                Err(error) => Some(Err(IpcError::Io(error))),
            },
            _ => return Ok(true),
        };
        let Some(result) = received else {
            return Ok(false);
        };
        self.store(result)?;
        Ok(true)
    }

    /// Keeps what came out of the report channel, and lets the channel go: one report per
    /// child. An I/O error leaves the channel, to be read again.
    fn store(&mut self, result: Result<attach::Payload, IpcError>) -> Result<(), ProcessError> {
        self.report = ReportState::Received(match result {
            Ok(payload) => Some(payload),
            Err(IpcError::Disconnected) => None,
            Err(IpcError::Io(source)) => return Err(ProcessError::Ipc { source }),
            Err(IpcError::SerializationError(error)) => {
                return Err(ProcessError::Ipc {
                    source: std::io::Error::other(error),
                });
            }
        });
        Ok(())
    }
}

/// How long a wait on a report channel goes without looking at the child: a process the child
/// forked may hold a copy of the channel's sending end, so that the channel stays open after the
/// child has ended without reporting; the child's pidfd says so, within this long.
const LOOK_AT_THE_CHILD: Duration = Duration::from_millis(50);

/// Waits for a report on `channel`, or its end (or that of the child, whose pidfd is `child`),
/// until `deadline` (`None`: no deadline); `None` if none of these has come.
fn receive_until(
    channel: &wire::Receiver,
    child: BorrowedFd<'_>,
    deadline: Option<Instant>,
) -> Option<Result<attach::Payload, IpcError>> {
    loop {
        let look = Instant::now() + LOOK_AT_THE_CHILD;
        let until = deadline.map_or(look, |deadline| deadline.min(look));
        match wire::recv_until(channel, until) {
            Ok(payload) => return Some(Ok(payload)),
            Err(TryRecvError::Empty) if crate::sys::has_ended(child) => {
                // Whatever it sent before it ended is in the channel by now.
                return Some(match channel.try_recv() {
                    Ok(payload) => Ok(payload),
                    Err(TryRecvError::Empty) => Err(IpcError::Disconnected),
                    Err(TryRecvError::IpcError(error)) => Err(error),
                });
            }
            Err(TryRecvError::Empty)
                if deadline.is_none_or(|deadline| Instant::now() < deadline) => {}
            Err(TryRecvError::Empty) => return None,
            Err(TryRecvError::IpcError(error)) => return Some(Err(error)),
        }
    }
}

fn waiting_failed(source: std::io::Error) -> ProcessError {
    ProcessError::Os {
        what: "wait for the child",
        source,
    }
}

impl<R: serde::de::DeserializeOwned + 'static> Process<R> {
    /// Waits for the child to end and returns what its task returned (Python's `p.join()`,
    /// plus the return value Python would make you send through a queue).
    ///
    /// # Errors
    ///
    /// [`ProcessError`] says why there is no value: the task panicked (with its message and
    /// location), the child exited or was killed before sending one, or the value was lost on
    /// the way.
    pub fn join(mut self) -> Result<R, ProcessError> {
        self.ensure_not_taken()?;
        let status = self.wait_for_end()?;
        self.take_value(status)
    }

    /// Waits at most `timeout` for the child to end (Python's `p.join(timeout)`): `Ok(None)` if it
    /// is still running, its value once it has ended. The value can be taken once; after that,
    /// `join` and `join_timeout` return [`ProcessError::AlreadyJoined`].
    ///
    /// # Errors
    ///
    /// As for [`join`](Process::join).
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<Option<R>, ProcessError> {
        self.ensure_not_taken()?;
        let Some(status) = self.wait_until(deadline_after(timeout))? else {
            return Ok(None);
        };
        self.take_value(status).map(Some)
    }

    fn ensure_not_taken(&self) -> Result<(), ProcessError> {
        match self.report {
            ReportState::Taken => Err(ProcessError::AlreadyJoined),
            _ => Ok(()),
        }
    }

    /// The value the child reported, once it has ended with `status`; or why there is none.
    fn take_value(&mut self, status: ExitStatus) -> Result<R, ProcessError> {
        match std::mem::replace(&mut self.report, ReportState::Taken) {
            ReportState::Received(Some(mut payload)) => {
                decode_report(&payload.bytes.0, &mut payload.shared)
            }
            _ => Err(match status {
                ExitStatus::Exited(code) => ProcessError::Exited { code },
                ExitStatus::Signaled(signal) => ProcessError::Killed { signal },
            }),
        }
    }
}

/// The instant `timeout` from now; `None` (no deadline) if that is beyond what `Instant` holds.
fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

fn decode_report<R: serde::de::DeserializeOwned + 'static>(
    bytes: &[u8],
    shared: &mut attach::Attachments,
) -> Result<R, ProcessError> {
    task::decode_value(bytes.into(), shared).map_err(ProcessError::from)
}

impl<R> Drop for Process<R> {
    fn drop(&mut self) {
        if let ReportState::Pending(Reports::Pipe(pipe)) =
            std::mem::replace(&mut self.report, ReportState::Taken)
        {
            // What it may send beside its report is let go of when it has ended.
            self.child.on_reap(Box::new(pipe.abandon()));
        }
        children::detach(Arc::clone(&self.child));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Report;

    #[test]
    fn corrupt_reports_are_typed_errors() {
        let error = decode_report::<u64>(&[0xff, 0xff, 0xff], &mut Vec::new()).unwrap_err();
        assert!(
            matches!(
                error,
                ProcessError::Decode {
                    type_name: "u64",
                    len: 3,
                    ..
                }
            ),
            "{error}"
        );
        let empty = decode_report::<String>(&[], &mut Vec::new()).unwrap_err();
        assert!(matches!(empty, ProcessError::Decode { len: 0, .. }));
    }

    #[test]
    fn a_huge_timeout_means_no_deadline() {
        assert_eq!(deadline_after(Duration::MAX), None);
        assert!(deadline_after(Duration::from_secs(1)).is_some());
    }

    #[test]
    fn reports_decode_by_variant() {
        let bytes = crate::codec::encode(&Report::<u64>::Returned(12)).unwrap();
        assert_eq!(decode_report::<u64>(&bytes, &mut Vec::new()).unwrap(), 12);
        let failed: Report<()> = Report::Failed("no".into());
        let bytes = crate::codec::encode(&failed).unwrap();
        assert!(matches!(
            decode_report::<Vec<String>>(&bytes, &mut Vec::new()),
            Err(ProcessError::Failed(_))
        ));
    }
}
