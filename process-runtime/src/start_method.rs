//! How a child process is started, and the process-wide default.

use std::sync::atomic::{AtomicU8, Ordering};

/// How a child process is started.
///
/// | method | what happens | safe in a multi-threaded parent | cost |
/// |---|---|---|---|
/// | [`ForkServer`](StartMethod::ForkServer) (default) | a small single-threaded server process, started once by re-executing this program, forks each child | yes | lowest |
/// | [`Spawn`](StartMethod::Spawn) | the current executable is executed again and runs only the task, never `main` | yes | highest: a whole program start per child |
/// | [`Fork`](StartMethod::Fork) | the calling process is forked | no: a lock held by another thread at the moment of the fork stays locked in the child | low, but grows with the parent's memory |
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum StartMethod {
    /// Fork the calling process. The child shares nothing with the parent afterwards, but it
    /// starts as a copy of it, threads excepted: only the forking thread exists in the child.
    Fork,
    /// Execute the current program again; the new process runs only the task.
    Spawn,
    /// Ask this process's fork server to fork the child.
    #[default]
    ForkServer,
}

impl StartMethod {
    /// Every start method, in the order of the table above.
    pub const ALL: [StartMethod; 3] = [
        StartMethod::ForkServer,
        StartMethod::Spawn,
        StartMethod::Fork,
    ];

    /// Python's name for the method: `"fork"`, `"spawn"` or `"forkserver"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StartMethod::Fork => "fork",
            StartMethod::Spawn => "spawn",
            StartMethod::ForkServer => "forkserver",
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            StartMethod::Fork => 1,
            StartMethod::Spawn => 2,
            StartMethod::ForkServer => 3,
        }
    }

    fn from_u8(value: u8) -> Option<Self> {
        match value {
            1 => Some(StartMethod::Fork),
            2 => Some(StartMethod::Spawn),
            3 => Some(StartMethod::ForkServer),
            _ => None,
        }
    }
}

impl std::fmt::Display for StartMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// [`set_start_method`] was called with a method other than the one already set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the start method was already set to {current}; it cannot be changed to {requested}")]
pub struct StartMethodError {
    current: StartMethod,
    requested: StartMethod,
}

static DEFAULT: AtomicU8 = AtomicU8::new(0);

/// Sets the start method that [`Process`](crate::Process) uses when its builder names none
/// (Python's `multiprocessing.set_start_method`).
///
/// It can be set once per process: setting it again to the same method is fine, to another one is
/// an error, as in Python, because children already started one way would not match the new
/// setting. The builder of each process and of each pool can still choose a method of its own.
///
/// ```
/// use process_runtime::{StartMethod, get_start_method, set_start_method};
///
/// set_start_method(StartMethod::Spawn)?;
/// assert_eq!(get_start_method(), StartMethod::Spawn);
/// assert!(set_start_method(StartMethod::Fork).is_err());
/// # Ok::<(), process_runtime::Error>(())
/// ```
pub fn set_start_method(method: StartMethod) -> Result<(), StartMethodError> {
    match DEFAULT.compare_exchange(0, method.to_u8(), Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => Ok(()),
        Err(current) if current == method.to_u8() => Ok(()),
        Err(current) => Err(StartMethodError {
            current: StartMethod::from_u8(current).unwrap_or_default(),
            requested: method,
        }),
    }
}

/// The start method used when none is named: the one [`set_start_method`] set, or
/// [`StartMethod::ForkServer`].
pub fn get_start_method() -> StartMethod {
    StartMethod::from_u8(DEFAULT.load(Ordering::Acquire)).unwrap_or_default()
}
