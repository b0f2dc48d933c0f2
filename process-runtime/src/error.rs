//! Typed errors: why a child could not start, and why it gave no result.

use std::fmt;
use std::io;

use serde::{Deserialize, Serialize};

use crate::codec::{DecodeError, EncodeError};

/// Where a task panicked, and with what message.
///
/// Sent by the child to its parent when the task panics; found in
/// [`ProcessError::Panicked`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanicInfo {
    message: String,
    location: Option<Location>,
}

/// A source location, as `file:line:column`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    file: String,
    line: u32,
    column: u32,
}

impl PanicInfo {
    pub(crate) fn new(message: String, location: Option<Location>) -> Self {
        PanicInfo { message, location }
    }

    /// The panic message (`"explicit panic"` when the payload was not a string).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where the panic happened, when known.
    pub fn location(&self) -> Option<&Location> {
        self.location.as_ref()
    }
}

impl fmt::Display for PanicInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.message)?;
        if let Some(location) = &self.location {
            write!(f, " at {location}")?;
        }
        Ok(())
    }
}

impl Location {
    pub(crate) fn new(file: &str, line: u32, column: u32) -> Self {
        Location {
            file: file.to_owned(),
            line,
            column,
        }
    }

    /// The source file.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line, starting at 1.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The column, starting at 1.
    pub fn column(&self) -> u32 {
        self.column
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Why a child process could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The calling process is a daemon, and daemons may not have children (Python:
    /// `AssertionError: daemonic processes are not allowed to have children`).
    #[error("daemonic processes are not allowed to have children")]
    DaemonCannotHaveChildren,
    /// The executable the child runs has no task of that name: it was built from other sources,
    /// or the task is behind a `cfg` that is off there.
    #[error("task `{name}` is not registered in the child's executable {executable}")]
    NotRegistered {
        /// The task's [`NAME`](crate::Task::NAME).
        name: String,
        /// The executable the child ran.
        executable: String,
    },
    /// Two functions were registered under the same name (two `#[process_task] fn`s of the same
    /// name inside function bodies of one module); give one a `name = "..."`.
    #[error(
        "task name `{name}` is registered twice; give one of them #[process_task(name = \"...\")]"
    )]
    AmbiguousName {
        /// The name registered twice.
        name: String,
    },
    /// The arguments did not serialize.
    #[error("the arguments of task `{task}` did not encode")]
    Encode {
        /// The task's name.
        task: &'static str,
        /// What the encoder said.
        #[source]
        source: EncodeError,
    },
    /// An operating-system call needed to start the child failed: process or file limits,
    /// memory, a missing executable.
    #[error("could not {what}")]
    Os {
        /// What was being done, such as "fork" or "execute /usr/bin/app".
        what: String,
        /// The error the OS returned.
        #[source]
        source: io::Error,
    },
    /// A `process_global` stayed locked by another thread (or by this one, inside its
    /// `update`) while its value was to be copied for the child.
    #[error(
        "process_global `{name}` stayed locked while it was to be copied for the child; is a process being started inside its `update` or `with`?"
    )]
    GlobalBusy {
        /// The global's name.
        name: String,
    },
    /// The value of a `process_global` did not encode for the child.
    #[error("the value of process_global `{name}` did not encode")]
    GlobalEncode {
        /// The global's name.
        name: String,
        /// What the encoder said.
        #[source]
        source: EncodeError,
    },
    /// The child ended before it was ready to run its task.
    #[error("the child ended during startup ({status})")]
    Startup {
        /// How it ended, such as "exit code 101" or "signal 9".
        status: String,
    },
    /// The child did not answer the bootstrap protocol as expected.
    #[error("the child's bootstrap failed: {reason}")]
    Bootstrap {
        /// What went wrong.
        reason: String,
    },
}

impl SpawnError {
    pub(crate) fn os(what: impl Into<String>, source: io::Error) -> Self {
        SpawnError::Os {
            what: what.into(),
            source,
        }
    }
}

/// Why a child gave no result: it panicked, exited, was killed, or its result was lost.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// The task panicked; the child exited with code 1.
    #[error("the task panicked: {0}")]
    Panicked(PanicInfo),
    /// The child exited with this code before it sent a result (the task called
    /// `std::process::exit`, or the child aborted its startup).
    #[error("the child exited with code {code} before sending a result")]
    Exited {
        /// The exit code.
        code: i32,
    },
    /// A signal killed the child before it sent a result.
    #[error("the child was killed by signal {signal} ({})", signal_name(*signal))]
    Killed {
        /// The signal number, such as 9 for `SIGKILL`.
        signal: i32,
    },
    /// The child ran but its task did not: the arguments did not decode there, or the return
    /// value did not encode.
    #[error("the task could not run: {0}")]
    Failed(String),
    /// Receiving the result from the child failed.
    #[error("receiving the result failed")]
    Ipc {
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The result arrived but is not a valid encoding of the task's return type.
    #[error("the result ({len} bytes) did not decode as `{type_name}`")]
    Decode {
        /// The Rust type that was expected.
        type_name: &'static str,
        /// How many bytes arrived.
        len: usize,
        /// What the decoder said.
        #[source]
        source: DecodeError,
    },
    /// Waiting for the child or signalling it failed.
    #[error("could not {what}")]
    Os {
        /// What was being done.
        what: &'static str,
        /// The error the OS returned.
        #[source]
        source: io::Error,
    },
    /// The result was already taken by an earlier [`join_timeout`](crate::Process::join_timeout).
    #[error("the process was already joined and its result taken")]
    AlreadyJoined,
}

impl ProcessError {
    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, ProcessError::Panicked(_))
    }

    /// The panic, if the task panicked.
    pub fn panic_info(&self) -> Option<&PanicInfo> {
        match self {
            ProcessError::Panicked(info) => Some(info),
            _ => None,
        }
    }

    /// The child's exit code in Python's convention, when the error is about how it ended: `N`
    /// for an exit with code `N` (1 after a panic), `-N` for a kill by signal `N`.
    pub fn exitcode(&self) -> Option<i32> {
        match self {
            ProcessError::Panicked(_) | ProcessError::Failed(_) => Some(1),
            ProcessError::Exited { code } => Some(*code),
            ProcessError::Killed { signal } => Some(-signal),
            _ => None,
        }
    }
}

/// Why one task of a [`Pool`](crate::Pool) gave no result. The pool itself goes on: only this
/// task failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked; the worker that ran it goes on with other tasks.
    #[error("the task panicked: {0}")]
    Panicked(PanicInfo),
    /// The worker running the task died (a segfault, an abort, `exit`, a `SIGKILL` from outside).
    /// The pool replaced it; no other task was lost.
    #[error("the worker running the task (pid {pid}) {status}")]
    WorkerDied {
        /// The pid of the worker that died.
        pid: u32,
        /// How it ended, such as "was killed by signal 9 (SIGKILL)" or "exited with code 3".
        status: String,
    },
    /// The task ran longer than the pool's `task_timeout`; its worker was killed and replaced.
    #[error("the task ran longer than the pool's task timeout of {limit:?}; its worker was killed")]
    Timeout {
        /// The pool's limit.
        limit: std::time::Duration,
    },
    /// [`AsyncResult::get_timeout`](crate::AsyncResult::get_timeout) waited this long; the task
    /// is still running and its result can still be waited for.
    #[error("the result was not ready after {waited:?}")]
    NotReady {
        /// How long the caller waited.
        waited: std::time::Duration,
    },
    /// The task's argument did not encode; the task was never sent.
    #[error("the task's argument did not encode: {0}")]
    Encode(String),
    /// The result arrived but is not a valid encoding of the task's return type.
    #[error("the result ({len} bytes) did not decode as `{type_name}`: {reason}")]
    Decode {
        /// The Rust type that was expected.
        type_name: &'static str,
        /// How many bytes arrived.
        len: usize,
        /// What the decoder said.
        reason: String,
    },
    /// The worker could not run the task: its arguments did not decode there, its result did
    /// not encode, or the worker's executable does not have it.
    #[error("the task could not run: {0}")]
    Failed(String),
    /// Producing this item of the input panicked; the items before it were submitted, none after.
    #[error("producing this item of the input panicked: {0}")]
    Input(String),
    /// The pool's initializer failed in a worker, so the pool cannot run tasks.
    #[error("the pool's initializer failed: {0}")]
    InitializerFailed(String),
    /// The pool was terminated before the task finished.
    #[error("the pool was terminated before the task finished")]
    Terminated,
    /// The pool refused the task (closed, or its workers could not be started).
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// The result was already taken from this handle.
    #[error("the result was already taken")]
    AlreadyTaken,
}

/// Why a [`Pool`](crate::Pool) could not be made or refused work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// A pool needs at least one process.
    #[error("a pool needs at least one process, not 0")]
    NoProcesses,
    /// The pool was closed: it finishes what it has, and takes nothing new.
    #[error("the pool is closed and takes no new tasks")]
    Closed,
    /// The pool was terminated.
    #[error("the pool was terminated")]
    Terminated,
    /// `join` was called before `close` or `terminate`, as Python forbids too.
    #[error("join needs the pool to be closed or terminated first")]
    StillRunning,
    /// A worker could not be started.
    #[error("could not start a pool worker: {0}")]
    Spawn(String),
    /// An option has a value it cannot have.
    #[error("invalid pool option: {0}")]
    Invalid(&'static str),
    /// The initializer's arguments did not encode.
    #[error("the initializer's arguments did not encode: {0}")]
    Encode(String),
}

/// The one error type of the crate, for callers that do not need to tell spawn, join and pool
/// failures apart: every other error converts into it with `?`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A child could not be started.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// A child gave no result.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// The start method was already set to another value.
    #[error(transparent)]
    StartMethod(#[from] crate::start_method::StartMethodError),
    /// A pool task gave no result.
    #[error(transparent)]
    Task(#[from] TaskError),
    /// A pool could not be made or refused work.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A shared object failed: a timeout, a lock whose holder died, a queue item too large.
    #[error(transparent)]
    Shared(#[from] crate::shared::SharedError),
}

/// The conventional name of a signal, such as `SIGKILL`.
pub(crate) fn signal_name(signal: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(signal).map_or("unknown signal", |s| s.as_str())
}

impl From<crate::task::NoValue> for ProcessError {
    fn from(no_value: crate::task::NoValue) -> Self {
        use crate::task::NoValue;
        match no_value {
            NoValue::Panicked(info) => ProcessError::Panicked(info),
            NoValue::Failed(reason) => ProcessError::Failed(reason),
            NoValue::Decode {
                type_name,
                len,
                source,
            } => ProcessError::Decode {
                type_name,
                len,
                source,
            },
        }
    }
}

impl From<crate::task::NoValue> for TaskError {
    fn from(no_value: crate::task::NoValue) -> Self {
        use crate::task::NoValue;
        match no_value {
            NoValue::Panicked(info) => TaskError::Panicked(info),
            NoValue::Failed(reason) => TaskError::Failed(reason),
            NoValue::Decode {
                type_name,
                len,
                source,
            } => TaskError::Decode {
                type_name,
                len,
                reason: source.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_without_trailing_period() {
        let errors: Vec<Box<dyn std::error::Error>> = vec![
            Box::new(SpawnError::DaemonCannotHaveChildren),
            Box::new(ProcessError::Killed { signal: 9 }),
            Box::new(ProcessError::Exited { code: 3 }),
            Box::new(ProcessError::Panicked(PanicInfo::new(
                "boom".into(),
                Some(Location::new("src/main.rs", 4, 5)),
            ))),
        ];
        for error in errors {
            let text = error.to_string();
            assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
            assert!(!text.ends_with('.'), "{text}");
        }
        assert_eq!(
            ProcessError::Killed { signal: 9 }.to_string(),
            "the child was killed by signal 9 (SIGKILL)"
        );
        assert_eq!(
            ProcessError::Panicked(PanicInfo::new(
                "boom".into(),
                Some(Location::new("src/main.rs", 4, 5))
            ))
            .to_string(),
            "the task panicked: 'boom' at src/main.rs:4:5"
        );
    }

    #[test]
    fn exitcodes_follow_python() {
        assert_eq!(ProcessError::Killed { signal: 15 }.exitcode(), Some(-15));
        assert_eq!(ProcessError::Exited { code: 3 }.exitcode(), Some(3));
        assert_eq!(ProcessError::AlreadyJoined.exitcode(), None);
    }
}
