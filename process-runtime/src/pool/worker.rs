//! A pool worker: a long-lived daemon child that runs any registered task by name, in a loop.
//!
//! The protocol, both ways encoded once by [`codec`](crate::codec):
//!
//! - the pool sends [`ToWorker::Batch`]es: the names of the tasks used in the batch, and items of
//!   `(id, task index, encoded (task, args))`; or [`ToWorker::Stop`];
//! - the worker sends [`FromWorker::Results`]: `(id, encoded report)` for each item it finished,
//!   flushed at the end of each batch and whenever results have waited [`FLUSH_AFTER`], so that a
//!   long batch still streams.
//!
//! Before each item the worker writes the item's id and the time into a [`Progress`] cell in
//! memory it shares with the pool; after it, it marks the id done. When a worker dies, that cell
//! tells the pool exactly which item it was running: that item fails, and the others the worker
//! held go to another worker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ipc_channel::ipc::IpcSharedMemory;
use serde::{Deserialize, Serialize};

use crate::attach::Nested;
use crate::child;
use crate::codec;
use crate::task::{self, Outcome, Report, encode_report};
use crate::wire::Bytes;

/// How long finished results may wait in a worker before they are sent.
const FLUSH_AFTER: Duration = Duration::from_millis(2);

/// The registered name of the worker loop.
pub(crate) const WORKER_TASK: &str = "process_runtime::pool::worker";

/// What a worker is told when it starts.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WorkerConfig {
    /// A registered task and its encoded `(task, args)`, run once before any work.
    pub(crate) initializer: Option<(String, Nested)>,
    /// End after this many units of work (Python's `maxtasksperchild`).
    pub(crate) max_tasks: Option<u64>,
}

/// From the pool to a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker<'a> {
    /// Run these items, in order.
    Batch {
        #[serde(borrow)]
        names: Vec<&'a str>,
        #[serde(borrow)]
        items: Vec<Item<'a>>,
        /// How many units of work (chunks) these items make, for `max_tasks`.
        units: u64,
    },
    /// Finish and exit.
    Stop,
}

/// One item of a batch.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Item<'a> {
    pub(crate) id: u64,
    pub(crate) task: u32,
    #[serde(borrow, with = "serde_bytes_borrowed")]
    pub(crate) payload: &'a [u8],
    /// How many of the batch's shared memory segments belong to this item (they come in item
    /// order).
    pub(crate) shared: u32,
}

/// From a worker to the pool.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker<'a> {
    /// Reports of finished items, and the time spent running them.
    Results {
        #[serde(borrow)]
        items: Vec<(u64, &'a [u8])>,
        busy_nanos: u64,
    },
    /// The initializer failed; the worker exits.
    InitializerFailed(String),
}

/// `&[u8]` as one byte string, borrowed when decoding.
mod serde_bytes_borrowed {
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<&'de [u8], D::Error> {
        <&'de [u8] as serde::Deserialize<'de>>::deserialize(deserializer)
    }
}

/// A worker's progress, in memory shared with the pool: the id of the item it is running (or
/// ran last) with a "done" bit, and when it started it.
#[derive(Debug)]
pub(crate) struct Progress {
    memory: IpcSharedMemory,
}

/// Set in the id word once the item has finished.
const DONE: u64 = 1 << 63;

/// What the progress cell says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// No item started yet.
    Idle,
    /// Running item `id` since `started_nanos` on the monotonic clock.
    Running { id: u64, started_nanos: u64 },
    /// Item `id` finished; the next has not started.
    Finished { id: u64 },
}

impl Progress {
    /// A new cell, shared by handing a clone to the worker.
    pub(crate) fn new() -> Self {
        Progress {
            memory: IpcSharedMemory::from_byte(0, 16),
        }
    }

    pub(crate) fn from_shared(memory: IpcSharedMemory) -> Option<Self> {
        (memory.len() >= 16).then_some(Progress { memory })
    }

    pub(crate) fn share(&self) -> IpcSharedMemory {
        self.memory.clone()
    }

    fn words(&self) -> (&AtomicU64, &AtomicU64) {
        let base = self.memory.as_ptr() as *mut u64;
        // SAFETY: the mapping is at least 16 bytes (checked at construction), page-aligned, and
        // lives as long as `self.memory`; both processes touch these two words only through
        // atomics, which is what makes the cross-process sharing sound.
        unsafe { (AtomicU64::from_ptr(base), AtomicU64::from_ptr(base.add(1))) }
    }

    fn start(&self, id: u64) {
        let (word, started) = self.words();
        started.store(monotonic_nanos(), Ordering::Relaxed);
        word.store(id, Ordering::Release);
    }

    fn finish(&self, id: u64) {
        self.words().0.store(id | DONE, Ordering::Release);
    }

    pub(crate) fn state(&self) -> State {
        let (word, started) = self.words();
        match word.load(Ordering::Acquire) {
            0 => State::Idle,
            id if id & DONE != 0 => State::Finished { id: id & !DONE },
            id => State::Running {
                id,
                started_nanos: started.load(Ordering::Relaxed),
            },
        }
    }
}

/// The monotonic clock in nanoseconds; the same clock in every process of the machine.
pub(crate) fn monotonic_nanos() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// The worker loop, registered under [`WORKER_TASK`] and started by the pool.
#[crate::process_task(name = "process_runtime::pool::worker")]
pub(crate) fn pool_worker(config: WorkerConfig) {
    let extras = child::take_extras();
    let (Some(inbox), Some(reports), Some(progress)) = (
        extras.inbox,
        child::reports(),
        extras.shared.and_then(Progress::from_shared),
    ) else {
        eprintln!("process-tasks: a pool worker was started without its channels");
        child::finish(task::EXIT_FAILURE);
    };
    let send = |message: &FromWorker<'_>| {
        let bytes = codec::encode(message).unwrap_or_default();
        if reports.send(Bytes(bytes)).is_err() {
            // The pool is gone.
            child::finish(0);
        }
    };

    if let Some((name, payload)) = config.initializer {
        let failure = match task::lookup(&name) {
            Ok(entry) => match (entry.run)(&payload.bytes, payload.shared) {
                Outcome { exit_code: 0, .. } => None,
                // Only the failure variants are decoded, and they do not depend on the
                // initializer's return type.
                Outcome { report, .. } => Some(match codec::decode::<Report<()>>(&report) {
                    Ok(Report::Panicked(info)) => format!("it panicked: {info}"),
                    Ok(Report::Failed(reason)) => reason,
                    _ => "it failed".to_owned(),
                }),
            },
            Err(_) => Some(format!(
                "task `{name}` is not registered in the worker's executable"
            )),
        };
        if let Some(failure) = failure {
            send(&FromWorker::InitializerFailed(failure));
            child::finish(task::EXIT_FAILURE);
        }
    }

    let mut units_done: u64 = 0;
    // Until the pool says stop, or drops its end of the inbox.
    while let Ok(message) = inbox.recv() {
        let mut shared = message.shared.into_iter();
        let message = message.bytes;
        let (names, items, units) = match codec::decode_borrowed::<ToWorker<'_>>(&message.0) {
            Ok(ToWorker::Batch {
                names,
                items,
                units,
            }) => (names, items, units),
            Ok(ToWorker::Stop) => break,
            Err(error) => {
                eprintln!("process-tasks: a pool worker received a corrupt batch: {error}");
                child::finish(task::EXIT_FAILURE);
            }
        };
        let entries: Vec<Result<&task::TaskEntry, String>> = names
            .iter()
            .map(|name| {
                task::lookup(name).map_err(|_| {
                    format!("task `{name}` is not registered in the worker's executable")
                })
            })
            .collect();
        let mut finished: Vec<(u64, Vec<u8>)> = Vec::with_capacity(items.len());
        let mut busy = Duration::ZERO;
        let mut oldest: Option<Instant> = None;
        for item in &items {
            let started = Instant::now();
            progress.start(item.id);
            let item_shared = shared.by_ref().take(item.shared as usize).collect();
            let outcome = match entries.get(item.task as usize) {
                Some(Ok(entry)) => (entry.run)(item.payload, item_shared),
                Some(Err(reason)) => encode_report::<()>(&Report::Failed(reason.clone())),
                None => {
                    encode_report::<()>(&Report::Failed("a corrupt batch named no task".into()))
                }
            };
            progress.finish(item.id);
            busy += started.elapsed();
            let Outcome { report, .. } = outcome;
            finished.push((item.id, report));
            if oldest.get_or_insert(started).elapsed() >= FLUSH_AFTER {
                flush(&send, &mut finished, &mut busy);
                oldest = None;
            }
        }
        flush(&send, &mut finished, &mut busy);
        units_done += units;
        if config.max_tasks.is_some_and(|max| units_done >= max) {
            break;
        }
    }
    child::finish(0)
}

fn flush(send: &impl Fn(&FromWorker<'_>), finished: &mut Vec<(u64, Vec<u8>)>, busy: &mut Duration) {
    if finished.is_empty() {
        return;
    }
    let items: Vec<(u64, &[u8])> = finished
        .iter()
        .map(|(id, report)| (*id, report.as_slice()))
        .collect();
    send(&FromWorker::Results {
        items,
        busy_nanos: busy.as_nanos() as u64,
    });
    finished.clear();
    *busy = Duration::ZERO;
}
