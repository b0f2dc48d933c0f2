//! Global state that knows it is per-process: [`process_global!`](crate::process_global) and
//! [`ProcessGlobal`].
//!
//! Each process has its own value. A child starts from its parent's value *at the moment it is
//! started*, whatever the start method:
//!
//! - under `Fork` the child is a copy of the parent, values included;
//! - under `Spawn` and `ForkServer` the child is not a copy, so the parent sends the values of
//!   the globals it has changed along with the task ([`snapshot`]), and the child installs them
//!   before the task runs ([`restore`]). Globals the parent never changed start from their
//!   initial value in both, so nothing is sent for them.
//!
//! Python differs here: under spawn and forkserver a child imports the module again and sees the
//! *initial* value of a module global, while under fork it sees the parent's current one, so the
//! same program prints different things depending on the start method. Here every method gives
//! the child the parent's current value, which is what the program says when it reads as
//! sequential code; and the child's writes never reach the parent, as in Python.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::attach::{self, Attachments};
use crate::codec::DecodeError;
use crate::error::SpawnError;

/// A global variable with one value per process, declared with
/// [`process_global!`](crate::process_global).
///
/// ```
/// use process_runtime::prelude::*;
///
/// process_global! {
///     /// How many items this process has seen.
///     static SEEN: u64 = 0;
/// }
///
/// #[process_task]
/// fn count_in_child() -> u64 {
///     SEEN.update(|n| *n += 10); // changes the child's copy only
///     SEEN.get()
/// }
///
/// SEEN.set(5);
/// assert_eq!(count_in_child.spawn()?.join()?, 15); // the child started from 5
/// assert_eq!(SEEN.get(), 5);                        // the parent still has 5
/// # Ok::<(), process_runtime::Error>(())
/// ```
pub struct ProcessGlobal<T: 'static> {
    name: &'static str,
    init: fn() -> T,
    value: OnceLock<Mutex<T>>,
    /// Whether this process's value may differ from the initial one (it was set, updated, or
    /// received from the parent), so that children must be sent it.
    changed: AtomicBool,
    /// The thread running `update` or `with` on the value, if any, so that a start from inside
    /// the closure is refused at once instead of after [`BUSY_LIMIT`].
    holder: AtomicUsize,
}

/// A number that identifies the calling thread while it lives: the address of a thread-local.
fn thread_token() -> usize {
    thread_local!(static TOKEN: u8 = const { 0 });
    TOKEN.with(|token| token as *const u8 as usize)
}

impl<T> std::fmt::Debug for ProcessGlobal<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessGlobal")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<T: 'static> ProcessGlobal<T> {
    #[doc(hidden)]
    pub const fn __new(name: &'static str, init: fn() -> T) -> Self {
        ProcessGlobal {
            name,
            init,
            value: OnceLock::new(),
            changed: AtomicBool::new(false),
            holder: AtomicUsize::new(0),
        }
    }

    /// The global's name: its module path and identifier.
    pub fn name(&self) -> &'static str {
        self.name
    }

    fn lock(&self) -> MutexGuard<'_, T> {
        self.value
            .get_or_init(|| Mutex::new((self.init)()))
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of this process's value.
    pub fn get(&self) -> T
    where
        T: Clone,
    {
        self.lock().clone()
    }

    /// Replaces this process's value. Children started afterwards start from it.
    pub fn set(&self, value: T) {
        self.changed.store(true, Ordering::Release);
        *self.lock() = value;
    }

    /// Changes this process's value in place and returns what `f` returns.
    ///
    /// The value is locked while `f` runs: `f` must not start processes (the start would wait
    /// to copy this very value, and fails with [`SpawnError::GlobalBusy`] instead).
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.changed.store(true, Ordering::Release);
        let mut value = self.lock();
        self.holder.store(thread_token(), Ordering::Release);
        let result = f(&mut value);
        self.holder.store(0, Ordering::Release);
        result
    }

    /// Reads this process's value in place and returns what `f` returns. The same caution as
    /// for [`update`](ProcessGlobal::update) applies.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let value = self.lock();
        self.holder.store(thread_token(), Ordering::Release);
        let result = f(&value);
        self.holder.store(0, Ordering::Release);
        result
    }
}

/// How long taking a snapshot waits for a global that another thread has locked.
const BUSY_LIMIT: Duration = Duration::from_secs(2);

impl<T: Serialize + DeserializeOwned + Send + 'static> ProcessGlobal<T> {
    /// Encodes this process's value if it may differ from the initial one.
    fn encode_changed(&self) -> Result<Option<Vec<u8>>, SpawnError> {
        if !self.changed.load(Ordering::Acquire) {
            return Ok(None);
        }
        let cell = self.value.get_or_init(|| Mutex::new((self.init)()));
        let deadline = Instant::now() + BUSY_LIMIT;
        let value = loop {
            match cell.try_lock() {
                Ok(value) => break value,
                Err(TryLockError::Poisoned(poisoned)) => break poisoned.into_inner(),
                Err(TryLockError::WouldBlock)
                    if Instant::now() < deadline
                        && self.holder.load(Ordering::Acquire) != thread_token() =>
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(SpawnError::GlobalBusy {
                        name: self.name.to_owned(),
                    });
                }
            }
        };
        crate::codec::encode(&*value)
            .map(Some)
            .map_err(|source| SpawnError::GlobalEncode {
                name: self.name.to_owned(),
                source,
            })
    }

    /// Locks the value, if it exists, for the length of a fork (see [`hold_all_for_fork`]).
    fn hold(&'static self) -> Option<Box<dyn std::any::Any>> {
        let cell = self.value.get()?;
        let deadline = Instant::now() + BUSY_LIMIT;
        loop {
            match cell.try_lock() {
                Ok(guard) => return Some(Box::new(guard)),
                Err(TryLockError::Poisoned(poisoned)) => {
                    return Some(Box::new(poisoned.into_inner()));
                }
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(TryLockError::WouldBlock) => return None,
            }
        }
    }

    fn decode_into(&self, bytes: &[u8]) -> Result<(), DecodeError> {
        let value: T = crate::codec::decode(bytes)?;
        self.changed.store(true, Ordering::Release);
        *self.lock() = value;
        Ok(())
    }
}

/// What the global table needs of a [`ProcessGlobal`], whatever its type.
#[doc(hidden)]
pub trait Erased: Sync {
    fn name(&self) -> &'static str;
    fn encode_changed(&self) -> Result<Option<Vec<u8>>, SpawnError>;
    fn decode_into(&self, bytes: &[u8]) -> Result<(), DecodeError>;
    fn hold(&'static self) -> Option<Box<dyn std::any::Any>>;
}

impl<T: Serialize + DeserializeOwned + Send + 'static> Erased for ProcessGlobal<T> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn encode_changed(&self) -> Result<Option<Vec<u8>>, SpawnError> {
        ProcessGlobal::encode_changed(self)
    }
    fn decode_into(&self, bytes: &[u8]) -> Result<(), DecodeError> {
        ProcessGlobal::decode_into(self, bytes)
    }
    fn hold(&'static self) -> Option<Box<dyn std::any::Any>> {
        ProcessGlobal::hold(self)
    }
}

/// One row of the global table.
#[doc(hidden)]
pub struct GlobalEntry {
    global: &'static dyn Erased,
}

impl std::fmt::Debug for GlobalEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalEntry")
            .field("name", &self.global.name())
            .finish()
    }
}

impl GlobalEntry {
    pub const fn of(global: &'static dyn Erased) -> Self {
        GlobalEntry { global }
    }
}

/// Every `process_global!` of this executable.
#[doc(hidden)]
#[linkme::distributed_slice]
pub static GLOBALS: [GlobalEntry];

/// The values of the changed globals, by name, as sent to a child.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Snapshot {
    values: Vec<(String, crate::wire::Bytes)>,
    shared: Attachments,
}

impl Snapshot {
    /// How many shared objects and large byte strings the values hold.
    pub(crate) fn attachments(&self) -> usize {
        self.shared.len()
    }
}

/// The values of the globals this process has changed, for a child started now.
pub(crate) fn snapshot() -> Result<Snapshot, SpawnError> {
    let (values, shared) = attach::collecting(|| {
        GLOBALS
            .iter()
            .filter_map(|entry| match entry.global.encode_changed() {
                Ok(None) => None,
                Ok(Some(bytes)) => Some(Ok((
                    entry.global.name().to_owned(),
                    crate::wire::Bytes(bytes),
                ))),
                Err(error) => Some(Err(error)),
            })
            .collect::<Result<Vec<_>, _>>()
    });
    Ok(Snapshot {
        values: values?,
        shared,
    })
}

/// Installs the values a parent sent. A name this executable does not have, or has twice, is
/// skipped: it cannot be told apart.
pub(crate) fn restore(snapshot: Snapshot) -> Result<(), String> {
    attach::providing(snapshot.shared, || {
        for (name, bytes) in &snapshot.values {
            let mut matching = GLOBALS.iter().filter(|entry| entry.global.name() == name);
            if let (Some(entry), None) = (matching.next(), matching.next()) {
                entry.global.decode_into(&bytes.0).map_err(|error| {
                    format!("the value of process_global `{name}` did not decode: {error}")
                })?;
            }
        }
        Ok(())
    })
}

/// Locks every global's value for the length of a fork, so that a forked child never finds one
/// locked by a thread that does not exist in it. A value another thread keeps locked for longer
/// than a moment is left out (and stays locked in the child: the documented risk of `Fork`).
pub(crate) fn hold_all_for_fork() -> HeldForFork {
    HeldForFork(
        GLOBALS
            .iter()
            .filter_map(|entry| entry.global.hold())
            .collect(),
    )
}

/// The globals' values, locked across a fork (see [`hold_all_for_fork`]).
pub(crate) struct HeldForFork(Vec<Box<dyn std::any::Any>>);

impl HeldForFork {
    /// Unlocks them. With none held (a program without globals), runs no code of `Vec`'s: in a
    /// forked child, code run from another part of the executable is a page fault.
    #[inline(always)]
    pub(crate) fn release(self) {
        if self.0.is_empty() {
            // Nothing allocated, nothing to free.
            std::mem::forget(self.0);
        } else {
            drop(self.0);
        }
    }
}

/// Declares global variables with one value per process (see [`ProcessGlobal`]).
///
/// ```
/// use process_runtime::process_global;
///
/// process_global! {
///     static X: i64 = 100;
///     /// Documented, and public.
///     pub static NAMES: Vec<String> = vec!["pl".to_string()];
/// }
///
/// X.set(200);
/// X.update(|x| *x += 1);
/// assert_eq!(X.get(), 201);
/// assert_eq!(NAMES.with(|names| names.len()), 1);
/// ```
///
/// The type must be serializable (`Serialize + DeserializeOwned + Send`), so that a child started
/// by `Spawn` or the fork server can receive the value; the initializer runs at the first use in
/// each process that has not received a value.
#[macro_export]
macro_rules! process_global {
    ($($(#[$attr:meta])* $vis:vis static $name:ident : $ty:ty = $init:expr;)*) => {$(
        $(#[$attr])*
        $vis static $name: $crate::ProcessGlobal<$ty> = $crate::ProcessGlobal::__new(
            ::core::concat!(::core::module_path!(), "::", ::core::stringify!($name)),
            || $init,
        );
        const _: () = {
            #[$crate::__private::linkme::distributed_slice($crate::__private::GLOBALS)]
            #[linkme(crate = $crate::__private::linkme)]
            static ENTRY: $crate::__private::GlobalEntry = $crate::__private::GlobalEntry::of(&$name);
        };
    )*};
}
