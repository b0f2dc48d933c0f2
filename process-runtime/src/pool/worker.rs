//! A pool worker: a long-lived daemon child that runs any registered task by name, in a loop.
//!
//! The protocol, both ways encoded once by [`codec`](crate::codec):
//!
//! - the pool sends [`ToWorker::Batch`]es of *units*: each unit is one task's items (one item for
//!   an `apply`, a chunk for a `map`), as one buffer of encoded `(task, args)` with the end offset
//!   of each item; or [`ToWorker::Stop`];
//! - the worker sends [`FromWorker::Results`]: for each unit, the reports of a run of its items
//!   as one buffer, flushed at the end of each batch, whenever results have waited
//!   [`FLUSH_AFTER`] (so that a long batch still streams), and before a message would outgrow
//!   [`message_budget`](crate::wire::message_budget).
//!
//! A unit costs one message and no allocation per item on either side: what makes `map` of tiny
//! tasks fast.
//!
//! Before each item the worker writes the unit, the item and the time into a [`Progress`] cell in
//! memory it shares with the pool; after it, it marks the item done. When a worker dies, that cell
//! tells the pool exactly which item it was running: that item fails, and the others the worker
//! held go to another worker.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ipc_channel::ipc::IpcSharedMemory;
use serde::{Deserialize, Serialize};

use crate::attach::{self, Attachment, Attachments, Nested, Payload};
use crate::child;
use crate::codec::{self, EncodeError, Encoded};
use crate::shared::SharedError;
use crate::shared::segment::{Header, Segment};
use crate::task::{self, Report, encode_report_into};
use crate::wire::{Bytes, Offsets};

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
    /// Whether the pool needs to know when each item started (it has a task timeout).
    pub(crate) timed: bool,
}

/// From the pool to a worker.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToWorker<'a> {
    /// Run these units, in order.
    Batch {
        #[serde(borrow)]
        names: Vec<&'a str>,
        #[serde(borrow)]
        units: Vec<UnitMsg<'a>>,
    },
    /// Finish and exit.
    Stop,
}

/// One unit of a batch: the items of one task.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct UnitMsg<'a> {
    pub(crate) id: u64,
    /// The index of the task's name in the batch's names.
    pub(crate) task: u32,
    /// The end offset of each item in `items`. Borrowed from the pool's unit when sent: the
    /// pool keeps the unit until its results are back.
    pub(crate) ends: Cow<'a, Offsets>,
    /// The encoded `(task, args)` of each item, one after the other.
    #[serde(borrow, serialize_with = "as_bytes")]
    pub(crate) items: &'a [u8],
    /// The end of each item's shared memory segments among the unit's, which come after the
    /// previous units' in the batch's, in item order; empty when no item has any.
    pub(crate) shared: Cow<'a, [u32]>,
}

/// From a worker to the pool.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromWorker<'a> {
    /// Reports of finished items, and the time spent running them.
    Results {
        #[serde(borrow)]
        parts: Vec<Part<'a>>,
        busy_nanos: u64,
    },
    /// The initializer failed; the worker exits.
    InitializerFailed(String),
}

/// The reports of items `first..first + ends.len()` of unit `unit`, one after the other.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Part<'a> {
    pub(crate) unit: u64,
    pub(crate) first: u32,
    /// The end offset of each report in `reports`.
    pub(crate) ends: Offsets,
    #[serde(borrow, serialize_with = "as_bytes")]
    pub(crate) reports: &'a [u8],
    /// The end of each report's shared memory attachments among the part's, which come after
    /// the previous parts' in the message's, in report order; empty when no report of the part
    /// has any.
    pub(crate) shared: Vec<u32>,
}

/// Serializes a borrowed slice as one byte string, in one copy. Serde's own impl for `[u8]`
/// makes a sequence, one call per byte; for bincode the two encodings are the same bytes, so the
/// borrowed slice decodes either way.
fn as_bytes<S: serde::Serializer>(bytes: &&[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// Encoded values of consecutive items, one after the other in one buffer: their calls
/// `(task, args)` on the pool's side of a unit, or their reports once they are back.
#[derive(Debug, Default)]
pub(crate) struct Items {
    pub(crate) bytes: Vec<u8>,
    /// The end offset of each item in `bytes`.
    pub(crate) ends: Offsets,
    /// The shared memory segments of all items, in item order.
    pub(crate) shared: Attachments,
    /// The end of each item's attachments in `shared`, as `ends` for `bytes`; empty while no
    /// item has any.
    pub(crate) shared_ends: Vec<u32>,
}

impl Items {
    /// Encodes one more item, the call `(task, args)`. On failure nothing is added.
    pub(crate) fn push<T: crate::Task>(
        &mut self,
        task: &T,
        args: &T::Args,
    ) -> Result<(), EncodeError> {
        self.push_with(|out| task::encode_call(task, args, out))
    }

    /// Encodes one more item with `encode`. On failure nothing is added.
    pub(crate) fn push_with(
        &mut self,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        let start = self.bytes.len();
        let attached = self.shared.len();
        let bytes = &mut self.bytes;
        let encoded = attach::collecting_into(&mut self.shared, || encode(bytes)).and_then(|()| {
            match attach::too_many(self.shared.len() - attached) {
                Some(reason) => Err(crate::codec::encode_error(reason)),
                None => Ok(()),
            }
        });
        if let Err(error) = encoded {
            self.bytes.truncate(start);
            self.shared.truncate(attached);
            return Err(error);
        }
        end_shared(&mut self.shared_ends, self.ends.len(), self.shared.len());
        self.ends.0.push(self.bytes.len() as u32);
        Ok(())
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// About how many bytes the items take in a message: theirs and their end offsets.
    #[inline]
    pub(crate) fn wire_size(&self) -> usize {
        self.bytes.len() + 4 * self.ends.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The encoded item `index`.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> Option<Encoded<'_>> {
        item(&self.bytes, &self.ends, index)
    }

    /// The attachments of item `index`.
    #[inline]
    pub(crate) fn shared_of(&self, index: usize) -> Attachments {
        span(&self.shared_ends, index)
            .and_then(|span| self.shared.get(span))
            .map_or_else(Vec::new, <[Attachment]>::to_vec)
    }

    /// Hands each item and its attachments to `each`, in order, until it returns `false`. The
    /// attachments are moved out rather than copied (a shared object's copy maps its segment
    /// again), and lent: `each` takes what it keeps. The attachments are gone afterwards.
    ///
    /// A closure and a lent `Vec` rather than an iterator of owned ones: moving an empty `Vec`
    /// per item cost a stalled load each (see [`TaskEntry::run`](crate::task::TaskEntry)).
    pub(crate) fn drain_each(
        &mut self,
        mut each: impl FnMut(Encoded<'_>, &mut Attachments) -> bool,
    ) {
        let mut shared = std::mem::take(&mut self.shared).into_iter();
        let mut attachments = Vec::new();
        for index in 0..self.ends.len() {
            let count = span(&self.shared_ends, index).map_or(0, |span| span.len());
            // What `each` left of the previous item's is not this one's.
            if !attachments.is_empty() {
                attachments.clear();
            }
            if count > 0 {
                attachments.extend(shared.by_ref().take(count));
            }
            let bytes = item(&self.bytes, &self.ends, index).unwrap_or(Encoded::EMPTY);
            if !each(bytes, &mut attachments) {
                break;
            }
        }
    }

    /// A copy of items `range`.
    pub(crate) fn slice(&self, range: std::ops::Range<usize>) -> Items {
        /// Where items `range` start and end in what `ends` ends, and their ends from there.
        fn cut(ends: &[u32], range: &std::ops::Range<usize>) -> (std::ops::Range<usize>, Vec<u32>) {
            if ends.is_empty() {
                return (0..0, Vec::new());
            }
            let start = range.start.checked_sub(1).map_or(0, |last| ends[last]);
            let end = ends[range.end - 1];
            let ends = ends[range.clone()].iter().map(|end| end - start).collect();
            (start as usize..end as usize, ends)
        }
        let (bytes, ends) = cut(&self.ends, &range);
        let (shared, shared_ends) = cut(&self.shared_ends, &range);
        Items {
            bytes: self.bytes[bytes].to_vec(),
            ends: Offsets(ends),
            shared: self.shared[shared].to_vec(),
            shared_ends,
        }
    }
}

/// Records that the attachments of the item after the first `before` end at `end`, in `ends`
/// that are kept only once some item has any (the items before it end at 0).
#[inline]
fn end_shared(ends: &mut Vec<u32>, before: usize, end: usize) {
    if end > 0 || !ends.is_empty() {
        ends.resize(before, 0);
        ends.push(end as u32);
    }
}

/// Where item `index` is, when each item ends at `ends` (`None` past the last).
#[inline]
fn span(ends: &[u32], index: usize) -> Option<std::ops::Range<usize>> {
    let start = if index == 0 {
        0
    } else {
        *ends.get(index - 1)? as usize
    };
    Some(start..*ends.get(index)? as usize)
}

/// The item `index` of a buffer of items ending at `ends`, followed by the items after it (see
/// [`Encoded`]).
#[inline]
fn item<'a>(buffer: &'a [u8], ends: &[u32], index: usize) -> Option<Encoded<'a>> {
    Encoded::in_buffer(buffer, span(ends, index)?)
}

/// A worker's progress, in memory shared with the pool: when it started its current item, the
/// unit, and the item's index with a "done" bit.
#[derive(Debug)]
pub(crate) struct Progress {
    segment: Segment<ProgressHeader>,
}

/// The words of a [`Progress`] cell.
#[repr(C)]
pub(crate) struct ProgressHeader {
    started: AtomicU64,
    unit: AtomicU64,
    /// The index plus one (0: no item yet), with [`DONE`] once it finished.
    index: AtomicU64,
}

// SAFETY: `#[repr(C)]`, 8-byte aligned, made only of atomics.
unsafe impl Header for ProgressHeader {
    const KIND: u32 = 7;
    const NAME: &'static str = "pool worker's progress";
}

/// Set in the index word once the item has finished.
const DONE: u64 = 1 << 63;

/// What the progress cell says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// No item started yet.
    Idle,
    /// Running item `index` of unit `unit` since `started_nanos` on the coarse monotonic clock
    /// (0 when the pool has no task timeout).
    Running {
        unit: u64,
        index: u32,
        started_nanos: u64,
    },
    /// Item `index` of unit `unit` finished; the next has not started.
    Finished { unit: u64, index: u32 },
}

impl Progress {
    /// A new cell, shared by handing [`share`](Progress::share) to the worker.
    pub(crate) fn new() -> Result<Self, SharedError> {
        Ok(Progress {
            segment: Segment::create(0)?,
        })
    }

    /// The cell the pool shared, checked to be one.
    pub(crate) fn from_shared(memory: IpcSharedMemory) -> Option<Self> {
        Segment::open(memory)
            .ok()
            .map(|segment| Progress { segment })
    }

    pub(crate) fn share(&self) -> IpcSharedMemory {
        self.segment.memory()
    }

    /// The started-at, unit and index words.
    fn words(&self) -> [&AtomicU64; 3] {
        let header = self.segment.header();
        [&header.started, &header.unit, &header.index]
    }

    /// Marks item `index` of `unit` started, at `now` (nanoseconds on the monotonic clock, or 0
    /// when nobody needs to know).
    fn start(&self, unit: u64, index: u32, now: u64) {
        let [started, unit_word, index_word] = self.words();
        started.store(now, Ordering::Relaxed);
        unit_word.store(unit, Ordering::Relaxed);
        // Last, with release: a reader that sees this index sees the time and unit with it.
        index_word.store(u64::from(index) + 1, Ordering::Release);
    }

    fn finish(&self, index: u32) {
        self.words()[2].store((u64::from(index) + 1) | DONE, Ordering::Release);
    }

    pub(crate) fn state(&self) -> State {
        let [started, unit, index] = self.words();
        match index.load(Ordering::Acquire) {
            0 => State::Idle,
            word => {
                let unit = unit.load(Ordering::Relaxed);
                let index = ((word & !DONE) - 1) as u32;
                if word & DONE != 0 {
                    State::Finished { unit, index }
                } else {
                    State::Running {
                        unit,
                        index,
                        started_nanos: started.load(Ordering::Relaxed),
                    }
                }
            }
        }
    }
}

/// The monotonic clock as the kernel last updated it (every few milliseconds), in nanoseconds:
/// the same clock in every process of the machine, much cheaper to read than the precise one,
/// and precise enough for flushing and timeouts.
pub(crate) fn coarse_nanos() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC_COARSE)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// Reports waiting to be sent: runs of items of units, in one buffer.
#[derive(Default)]
struct Outbox {
    reports: Vec<u8>,
    /// The shared memory the reports refer to, in report order.
    shared: Attachments,
    parts: Vec<OutPart>,
    /// How many reports are waiting here.
    count: usize,
    /// Time spent running the items waiting here.
    busy: Duration,
    /// When the oldest report waiting here was made, on the coarse clock.
    oldest: Option<u64>,
}

/// A run of reports of one unit waiting in an [`Outbox`].
struct OutPart {
    unit: u64,
    first: u32,
    /// The end of each report, relative to `start`.
    ends: Vec<u32>,
    /// Where the part starts in the outbox's reports.
    start: usize,
    /// Where the part starts in the outbox's attachments.
    shared_start: usize,
    /// The end of each report's attachments, relative to `shared_start`; empty while none has
    /// any.
    shared: Vec<u32>,
}

impl Outbox {
    /// Runs item `index` of unit `unit`, appending its report and its attachments.
    fn record(&mut self, unit: u64, index: u32, run: impl FnOnce(&mut Vec<u8>, &mut Attachments)) {
        let continues = self
            .parts
            .last()
            .is_some_and(|part| part.unit == unit && part.first + part.ends.len() as u32 == index);
        if !continues {
            self.parts.push(OutPart {
                unit,
                first: index,
                ends: Vec::new(),
                start: self.reports.len(),
                shared_start: self.shared.len(),
                shared: Vec::new(),
            });
        }
        run(&mut self.reports, &mut self.shared);
        self.oldest.get_or_insert_with(coarse_nanos);
        let part = self.parts.last_mut().expect("pushed above");
        end_shared(
            &mut part.shared,
            part.ends.len(),
            self.shared.len() - part.shared_start,
        );
        part.ends.push((self.reports.len() - part.start) as u32);
        self.count += 1;
    }

    /// Whether the reports waiting make a message as large as it should get: the next one
    /// might take it past [`wire::message_budget`](crate::wire::message_budget), or past half
    /// the attachments a message carries.
    fn full(&self, budget: usize) -> bool {
        crate::wire::is_full(self.reports.len() + 4 * self.count, self.count, budget)
            || self.shared.len() >= attach::MAX_PER_VALUE
    }

    fn due(&self) -> bool {
        self.oldest.is_some_and(|oldest| {
            coarse_nanos().saturating_sub(oldest) >= FLUSH_AFTER.as_nanos() as u64
        })
    }

    /// Sends what is waiting, if anything.
    fn flush(&mut self, send: &impl Fn(&FromWorker<'_>, Attachments)) {
        if self.parts.is_empty() {
            return;
        }
        // Each part ends where the next starts. Its offsets and counts are moved into the
        // message, not copied: the parts are cleared once it is sent.
        let mut parts = Vec::with_capacity(self.parts.len());
        for i in 0..self.parts.len() {
            let end = self
                .parts
                .get(i + 1)
                .map_or(self.reports.len(), |next| next.start);
            let part = &mut self.parts[i];
            parts.push(Part {
                unit: part.unit,
                first: part.first,
                ends: Offsets(std::mem::take(&mut part.ends)),
                reports: &self.reports[part.start..end],
                shared: std::mem::take(&mut part.shared),
            });
        }
        send(
            &FromWorker::Results {
                parts,
                busy_nanos: self.busy.as_nanos() as u64,
            },
            std::mem::take(&mut self.shared),
        );
        self.parts.clear();
        self.count = 0;
        self.reports.clear();
        self.busy = Duration::ZERO;
        self.oldest = None;
    }
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
    let send = |message: &FromWorker<'_>, shared: Attachments| {
        let mut bytes = Vec::new();
        if let FromWorker::Results { parts, .. } = message {
            let size: usize = parts
                .iter()
                .map(|p| p.reports.len() + 8 * p.ends.len())
                .sum();
            crate::wire::reserve(&mut bytes, size + 64);
        }
        if codec::encode_into(message, &mut bytes).is_err() {
            bytes.clear();
        }
        let payload = Payload {
            bytes: Bytes(bytes),
            shared,
        };
        if reports.send(payload).is_err() {
            // The pool is gone.
            child::finish(0);
        }
    };

    if let Some((name, payload)) = config.initializer {
        if let Some(failure) = run_initializer(&name, payload) {
            send(&FromWorker::InitializerFailed(failure), Vec::new());
            child::finish(task::EXIT_FAILURE);
        }
    }

    let mut outbox = Outbox::default();
    let budget = crate::wire::message_budget();
    let mut units_done: u64 = 0;
    // Until the pool says stop, or drops its end of the inbox.
    while let Ok(message) = inbox.recv() {
        let mut shared = message.shared.into_iter();
        let (names, units) = match codec::decode_borrowed::<ToWorker<'_>>(&message.bytes.0) {
            Ok(ToWorker::Batch { names, units }) => (names, units),
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
        for unit in &units {
            let entry = entries.get(unit.task as usize);
            // Timed per unit, not per item: reading the clock would cost as much as a tiny task.
            let mut started = Instant::now();
            for index in 0..unit.ends.len() {
                let count = span(&unit.shared, index).map_or(0, |span| span.len());
                let mut item_shared = if count == 0 {
                    Vec::new()
                } else {
                    shared.by_ref().take(count).collect()
                };
                let payload = item(unit.items, &unit.ends, index).unwrap_or(Encoded::EMPTY);
                let now = if config.timed { coarse_nanos() } else { 0 };
                progress.start(unit.id, index as u32, now);
                outbox.record(unit.id, index as u32, |out, out_shared| {
                    match entry {
                        Some(Ok(entry)) => {
                            (entry.run)(payload, &mut item_shared, out, out_shared);
                        }
                        Some(Err(reason)) => {
                            encode_report_into::<()>(&Report::Failed(reason.clone()), out);
                        }
                        None => {
                            encode_report_into::<()>(
                                &Report::Failed("a corrupt batch named no task".into()),
                                out,
                            );
                        }
                    };
                });
                progress.finish(index as u32);
                // Even the coarse clock costs as much as a tiny task: in a large unit (a map's
                // chunk of small items) look at it every few items only. A full outbox goes at
                // once, so that the next report always fits in a message.
                if outbox.full(budget)
                    || ((unit.ends.len() < 64 || index % 16 == 15) && outbox.due())
                {
                    outbox.busy += started.elapsed();
                    outbox.flush(&send);
                    started = Instant::now();
                }
            }
            outbox.busy += started.elapsed();
        }
        outbox.flush(&send);
        units_done += units.len() as u64;
        if config.max_tasks.is_some_and(|max| units_done >= max) {
            break;
        }
    }
    child::finish(0)
}

/// Runs the pool's initializer; `Some(reason)` if it failed.
fn run_initializer(name: &str, payload: Nested) -> Option<String> {
    let Ok(entry) = task::lookup(name) else {
        return Some(format!(
            "task `{name}` is not registered in the worker's executable"
        ));
    };
    let mut report = Vec::new();
    let mut shared = payload.shared;
    if (entry.run)(
        payload.bytes[..].into(),
        &mut shared,
        &mut report,
        &mut Vec::new(),
    ) == 0
    {
        return None;
    }
    // Only the failure variants are decoded, and they do not depend on the initializer's
    // return type.
    Some(match codec::decode::<Report<()>>(&report) {
        Ok(Report::Panicked(info)) => format!("it panicked: {info}"),
        Ok(Report::Failed(reason)) => reason,
        _ => "it failed".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_found_by_their_end_offsets() {
        let buffer = b"aaabcccc";
        let ends = [3, 4, 8];
        let bytes = |ends: &[u32], index| item(buffer, ends, index).map(Encoded::bytes);
        assert_eq!(bytes(&ends, 0), Some(&b"aaa"[..]));
        assert_eq!(bytes(&ends, 1), Some(&b"b"[..]));
        assert_eq!(bytes(&ends, 2), Some(&b"cccc"[..]));
        assert_eq!(bytes(&ends, 3), None);
        // Offsets that do not fit the buffer are not an index out of bounds.
        assert_eq!(bytes(&[9], 0), None);
        assert_eq!(bytes(&[5, 2], 1), None);
    }

    #[test]
    fn progress_reports_the_running_and_finished_item() {
        let progress = Progress::new().unwrap();
        assert_eq!(progress.state(), State::Idle);
        progress.start(7, 0, 1);
        assert!(matches!(
            progress.state(),
            State::Running {
                unit: 7,
                index: 0,
                ..
            }
        ));
        progress.finish(0);
        assert_eq!(progress.state(), State::Finished { unit: 7, index: 0 });
        let shared = Progress::from_shared(progress.share()).unwrap();
        shared.start(8, 41, 2);
        assert!(matches!(
            progress.state(),
            State::Running {
                unit: 8,
                index: 41,
                ..
            }
        ));
    }

    #[test]
    fn an_outbox_is_full_before_its_message_outgrows_the_budget() {
        let budget = crate::wire::message_budget();
        let mut outbox = Outbox::default();
        let report = vec![7_u8; 1000];
        let mut recorded = 0;
        // Bounded, so that an outbox that is never full fails the test rather than hangs it.
        while !outbox.full(budget) && recorded < 100_000 {
            outbox.record(1, recorded, |out, _| out.extend_from_slice(&report));
            recorded += 1;
        }
        // Full before the report that would take it past the budget, not earlier.
        let size = outbox.reports.len() + 4 * outbox.count;
        assert!(
            size <= budget && size + 1004 > budget,
            "{size} against {budget}"
        );
        let sent = std::cell::RefCell::new(Vec::new());
        outbox.flush(&|message: &FromWorker<'_>, _| {
            if let FromWorker::Results { parts, .. } = message {
                sent.borrow_mut()
                    .extend(parts.iter().map(|part| part.ends.len()));
            }
        });
        assert_eq!(sent.into_inner(), [recorded as usize]);
        assert!(!outbox.full(budget), "emptied by the flush");
    }

    #[test]
    fn a_slice_of_items_keeps_their_bytes_and_segments() {
        let mut items = Items::default();
        for value in [10_u64, 2000, 3] {
            items
                .push_with(|out| codec::encode_into(&value, out))
                .unwrap();
        }
        let middle = items.slice(1..3);
        assert_eq!(middle.len(), 2);
        let second: u64 = codec::decode_in(middle.get(0).unwrap()).unwrap();
        let third: u64 = codec::decode_in(middle.get(1).unwrap()).unwrap();
        assert_eq!((second, third), (2000, 3));
        assert!(middle.shared.is_empty() && middle.shared_ends.is_empty());
    }

    #[test]
    fn segment_ends_are_kept_from_the_first_item_that_has_any() {
        let mut items = Items::default();
        let value = crate::Value::new(2_u64).unwrap();
        items
            .push_with(|out| codec::encode_into(&1_u64, out))
            .unwrap();
        items
            .push_with(|out| codec::encode_into(&value, out))
            .unwrap();
        items
            .push_with(|out| codec::encode_into(&3_u64, out))
            .unwrap();
        assert_eq!(items.shared_ends, [0, 1, 1]);
        assert_eq!(items.shared.len(), 1);
        let per_item: Vec<usize> = (0..4).map(|i| items.shared_of(i).len()).collect();
        assert_eq!(per_item, [0, 1, 0, 0]);
        let middle = items.slice(1..2);
        assert_eq!(
            (middle.shared.len(), middle.shared_ends.as_slice()),
            (1, &[1][..])
        );
        let tail = items.slice(2..3);
        assert_eq!(
            (tail.shared.len(), tail.shared_ends.as_slice()),
            (0, &[0][..])
        );
    }
}
