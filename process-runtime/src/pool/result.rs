//! Where a pool delivers results: [`AsyncResult`] for one task, [`MapResult`] and the `imap`
//! iterators for many. The pool hands the encoded reports of a run of items to a [`Sink`] in one
//! piece. A `map`'s are decoded by the pool's own thread as they arrive, into the one vector of
//! results ([`MapCollector`]; its caller is busy encoding the rest); the others' by the caller's
//! thread, as it takes them ([`Slot`], [`Collector`]).

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::worker::Items;
use crate::attach::Attachments;
use crate::codec::Encoded;
use crate::error::TaskError;

/// A delivered run of reports, as [`Items`] whose encoded values are the items' reports.
impl Items {
    /// Decodes the report of item `index` into its value or its failure.
    fn decode<R: DeserializeOwned + 'static>(&self, index: usize) -> Result<R, TaskError> {
        decode(
            self.get(index).unwrap_or(Encoded::EMPTY),
            &mut self.shared_of(index),
        )
    }
}

/// What the pool delivers: the reports of items `first..first + n`, or why item `first` has none.
#[derive(Debug)]
pub(crate) enum Delivery {
    Reports(Items),
    Failed(TaskError),
}

impl Delivery {
    fn len(&self) -> usize {
        match self {
            Delivery::Reports(reports) => reports.len(),
            Delivery::Failed(_) => 1,
        }
    }

    fn decode<R: DeserializeOwned + 'static>(&self, offset: usize) -> Result<R, TaskError> {
        match self {
            Delivery::Reports(reports) => reports.decode(offset),
            Delivery::Failed(error) => Err(error.clone()),
        }
    }

    /// Decodes the first item, consuming the delivery: its attachments are moved into the value.
    fn into_first<R: DeserializeOwned + 'static>(self) -> Result<R, TaskError> {
        match self {
            Delivery::Reports(mut reports) => {
                let mut first = None;
                reports.drain_each(|bytes, shared| {
                    first = Some(decode(bytes, shared));
                    false
                });
                first.unwrap_or_else(|| decode(Encoded::EMPTY, &mut Vec::new()))
            }
            Delivery::Failed(error) => Err(error),
        }
    }
}

/// Receives the outcomes of the items it was given to.
pub(crate) trait Sink: Send + Sync {
    /// The outcome of items `first..first + delivery.len()` of this sink.
    fn deliver(&self, first: usize, delivery: Delivery);
}

/// Decodes a run of outcomes onto the end of `values`: the values up to the first failure, and
/// that failure, if any. A panic in a `Deserialize` impl is that item's failure, not the pool
/// thread's end. The attachments are moved into the values, not copied.
fn decode_run_into<R: DeserializeOwned + 'static>(
    delivery: Delivery,
    values: &mut Vec<R>,
) -> Result<(), TaskError> {
    match delivery {
        Delivery::Reports(mut reports) => {
            let mut failure = None;
            reports.drain_each(|bytes, shared| {
                let decoded = std::panic::catch_unwind(AssertUnwindSafe(|| decode(bytes, shared)))
                    .unwrap_or_else(|payload| {
                        Err(TaskError::Decode {
                            type_name: std::any::type_name::<R>(),
                            len: bytes.len(),
                            reason: format!(
                                "its Deserialize panicked: {}",
                                crate::panic::message_of(payload.as_ref())
                            ),
                        })
                    });
                match decoded {
                    Ok(value) => values.push(value),
                    Err(error) => failure = Some(error),
                }
                failure.is_none()
            });
            failure.map_or(Ok(()), Err)
        }
        Delivery::Failed(error) => Err(error),
    }
}

/// Decodes a report into the task's value or its failure.
fn decode<R: DeserializeOwned + 'static>(
    bytes: Encoded<'_>,
    shared: &mut Attachments,
) -> Result<R, TaskError> {
    crate::task::decode_value(bytes, shared).map_err(TaskError::from)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A condition variable that knows whether anybody waits, so that a delivery nobody waits for
/// costs no system call: results of a pool are mostly read after they arrived.
#[derive(Debug, Default)]
struct Signal {
    condvar: Condvar,
    /// Changed only with the associated mutex held.
    waiters: AtomicUsize,
}

impl Signal {
    /// Waits until notified or `deadline` (`None`: for ever); `None` once the deadline has
    /// passed.
    fn wait<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> Option<MutexGuard<'a, T>> {
        let left = match deadline {
            None => None,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                Some(left)
            }
        };
        self.waiters.fetch_add(1, Ordering::Relaxed);
        let guard = match left {
            None => self
                .condvar
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner),
            Some(left) => {
                self.condvar
                    .wait_timeout(guard, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
        };
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        Some(guard)
    }

    /// Wakes the waiters, if any. Call with the associated mutex held.
    fn notify(&self) {
        if self.waiters.load(Ordering::Relaxed) > 0 {
            self.condvar.notify_all();
        }
    }
}

/// The slot of one task's outcome.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    outcome: Mutex<Option<Delivery>>,
    ready: Signal,
}

impl Sink for Slot {
    fn deliver(&self, _first: usize, delivery: Delivery) {
        let mut outcome = lock(&self.outcome);
        *outcome = Some(delivery);
        self.ready.notify();
    }
}

impl Slot {
    /// Waits until the outcome is there or `deadline` passes; returns the guard either way.
    fn wait_until(&self, deadline: Option<Instant>) -> MutexGuard<'_, Option<Delivery>> {
        let mut outcome = lock(&self.outcome);
        while outcome.is_none() {
            match self.ready.wait(outcome, deadline) {
                Some(next) => outcome = next,
                None => return lock(&self.outcome),
            }
        }
        outcome
    }
}

/// The result of a task submitted with [`Pool::apply_async`](crate::Pool::apply_async), to be
/// collected later (Python's `AsyncResult`).
#[derive(Debug)]
#[must_use = "the task runs anyway; the handle is how its result is read"]
pub struct AsyncResult<R> {
    slot: Arc<Slot>,
    taken: bool,
    _output: PhantomData<fn() -> R>,
}

impl<R: DeserializeOwned + 'static> AsyncResult<R> {
    pub(crate) fn new(slot: Arc<Slot>) -> Self {
        AsyncResult {
            slot,
            taken: false,
            _output: PhantomData,
        }
    }

    /// Waits for the task and returns its value (Python's `get()`).
    ///
    /// # Errors
    ///
    /// [`TaskError`] says why there is no value: the task panicked, its worker died or took
    /// longer than the pool's `task_timeout`, or the pool was terminated.
    pub fn get(mut self) -> Result<R, TaskError> {
        self.take(None)
    }

    /// Waits at most `timeout` (Python's `get(timeout)`). If the task has not finished by then,
    /// returns [`TaskError::NotReady`]; the task goes on, and its value can be waited for again.
    ///
    /// # Errors
    ///
    /// As for [`get`](AsyncResult::get), plus `NotReady`, and [`TaskError::AlreadyTaken`] once
    /// the value was returned.
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<R, TaskError> {
        self.take(Instant::now().checked_add(timeout))
            .map_err(|error| match error {
                TaskError::NotReady { .. } => TaskError::NotReady { waited: timeout },
                other => other,
            })
    }

    fn take(&mut self, deadline: Option<Instant>) -> Result<R, TaskError> {
        if self.taken {
            return Err(TaskError::AlreadyTaken);
        }
        let delivery = self.slot.wait_until(deadline).take();
        match delivery {
            None => Err(TaskError::NotReady {
                waited: Duration::ZERO,
            }),
            Some(delivery) => {
                self.taken = true;
                delivery.into_first()
            }
        }
    }
}

impl<R> AsyncResult<R> {
    /// Whether the task has finished (Python's `ready()`).
    pub fn ready(&self) -> bool {
        lock(&self.slot.outcome).is_some()
    }

    /// Whether the task finished without failing (Python's `successful()`): `None` while it
    /// runs.
    pub fn successful(&self) -> Option<bool> {
        lock(&self.slot.outcome)
            .as_ref()
            .map(|delivery| match delivery {
                Delivery::Reports(reports) => reports
                    .get(0)
                    .is_some_and(|report| crate::task::is_returned(report.bytes())),
                Delivery::Failed(_) => false,
            })
    }

    /// Waits until the task has finished (Python's `wait()`).
    pub fn wait(&self) {
        drop(self.slot.wait_until(None));
    }

    /// Waits at most `timeout` until the task has finished; returns whether it has.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.slot
            .wait_until(Instant::now().checked_add(timeout))
            .is_some()
    }
}

/// Outcomes of many items, by index, decoded by their reader: the sink of the `imap` iterators.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    state: Mutex<Collected>,
    arrived: Signal,
}

#[derive(Debug, Default)]
struct Collected {
    /// Deliveries not yet consumed, by their first index; `taken` items of each are consumed.
    runs: BTreeMap<usize, (Delivery, usize)>,
    /// First indexes of runs with items left, in the order they arrived (for `imap_unordered`).
    arrivals: VecDeque<usize>,
    /// How many items have arrived in all.
    arrived: usize,
}

impl Sink for Collector {
    fn deliver(&self, first: usize, delivery: Delivery) {
        let mut state = lock(&self.state);
        state.arrived += delivery.len();
        state.runs.insert(first, (delivery, 0));
        state.arrivals.push_back(first);
        self.arrived.notify();
    }
}

impl Collector {
    /// Waits for the outcome of item `index`, decodes it, and forgets it. Items are taken in
    /// increasing order.
    pub(crate) fn take<R: DeserializeOwned + 'static>(&self, index: usize) -> Result<R, TaskError> {
        let mut state = lock(&self.state);
        loop {
            let found = state.runs.range_mut(..=index).next_back().and_then(
                |(first, (delivery, taken))| {
                    let offset = index - first;
                    (offset < delivery.len()).then(|| {
                        *taken += 1;
                        (*first, delivery.decode(offset), *taken == delivery.len())
                    })
                },
            );
            if let Some((first, value, finished)) = found {
                if finished {
                    state.runs.remove(&first);
                }
                return value;
            }
            state = self.arrived.wait(state, None).expect("no deadline");
        }
    }

    /// Waits for the outcome of any item not yet taken, decodes it, and forgets it.
    pub(crate) fn take_any<R: DeserializeOwned + 'static>(&self) -> Result<R, TaskError> {
        let mut state = lock(&self.state);
        loop {
            if let Some(first) = state.arrivals.front().copied() {
                if let Some((delivery, taken)) = state.runs.get_mut(&first) {
                    let value = delivery.decode(*taken);
                    *taken += 1;
                    if *taken == delivery.len() {
                        state.runs.remove(&first);
                        state.arrivals.pop_front();
                    }
                    return value;
                }
                state.arrivals.pop_front();
                continue;
            }
            state = self.arrived.wait(state, None).expect("no deadline");
        }
    }
}

/// The sink of `map` and `map_async`: the values of all items in one vector, in input order.
///
/// The pool's thread decodes each run as it is delivered, outside the lock, while the caller's
/// thread goes on encoding the next chunks (as Python's result handler does), and moves it onto
/// the end of the vector once the runs before it are there (a run that arrives ahead of its
/// turn waits for them, decoded). The caller is woken once, when all are in (or the first
/// failure in input order is), and takes the vector as it is.
pub(crate) struct MapCollector<R> {
    state: Mutex<MapState<R>>,
    finished: Signal,
    /// Set once a failure is known: the runs that come after are counted, not decoded (which
    /// would run their `Deserialize` for values nobody reads).
    failed: AtomicBool,
}

struct MapState<R> {
    /// The values of items `0..values.len()`.
    values: Vec<R>,
    /// Runs that arrived ahead of their turn, by their first index: their values up to their
    /// first failure, and that failure.
    ahead: BTreeMap<usize, (Vec<R>, Option<TaskError>)>,
    /// The first failure in input order; the items after it are not decoded.
    failure: Option<TaskError>,
    /// How many items have arrived in all, decoded or not.
    arrived: usize,
    len: usize,
}

impl<R> std::fmt::Debug for MapCollector<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("MapCollector")
            .field("len", &state.len)
            .field("decoded", &state.values.len())
            .field("arrived", &state.arrived)
            .field("failure", &state.failure)
            .finish()
    }
}

impl<R> MapCollector<R> {
    /// A collector for `len` items.
    pub(crate) fn new(len: usize) -> Self {
        MapCollector {
            state: Mutex::new(MapState {
                values: Vec::new(),
                ahead: BTreeMap::new(),
                failure: None,
                arrived: 0,
                len,
            }),
            finished: Signal::default(),
            failed: AtomicBool::new(false),
        }
    }
}

impl<R> MapState<R> {
    /// Whether `get` has its answer: every value, or the first failure.
    fn finished(&self) -> bool {
        self.failure.is_some() || self.values.len() >= self.len
    }
}

impl<R: DeserializeOwned + Send + 'static> Sink for MapCollector<R> {
    fn deliver(&self, first: usize, delivery: Delivery) {
        let len = delivery.len();
        // Decoded before the lock is taken: `get`, `ready` and `wait` are not held up meanwhile.
        // Once a failure is known, what comes after it is never read, nor decoded.
        let decoded = (!self.failed.load(Ordering::Acquire)).then(|| {
            let mut run = Vec::with_capacity(len);
            let failure = decode_run_into(delivery, &mut run).err();
            (run, failure)
        });
        let mut state = lock(&self.state);
        let state = &mut *state;
        state.arrived += len;
        if let (None, Some((run, failure))) = (&state.failure, decoded) {
            state.ahead.insert(first, (run, failure));
            while state.failure.is_none() {
                let Some((mut run, failure)) = state.ahead.remove(&state.values.len()) else {
                    break;
                };
                if state.values.capacity() == 0 {
                    // Reserved here, not when the map starts: allocated before the chunks were
                    // encoded, it made the bench's map measurably slower (memory layout).
                    let len = state.len;
                    state.values.reserve_exact(len);
                }
                state.values.append(&mut run);
                state.failure = failure;
            }
            if state.failure.is_some() {
                state.ahead.clear();
                self.failed.store(true, Ordering::Release);
            }
        }
        if state.finished() || state.arrived >= state.len {
            self.finished.notify();
        }
    }
}

/// The results of [`Pool::map_async`](crate::Pool::map_async), in input order.
#[derive(Debug)]
#[must_use = "the tasks run anyway; the handle is how their results are read"]
pub struct MapResult<R> {
    collector: Arc<MapCollector<R>>,
    taken: bool,
}

impl<R: DeserializeOwned + 'static> MapResult<R> {
    pub(crate) fn new(collector: Arc<MapCollector<R>>) -> Self {
        MapResult {
            collector,
            taken: false,
        }
    }

    /// Waits for every item and returns their values in input order, or the first failure in
    /// input order (Python's `get()`).
    ///
    /// # Errors
    ///
    /// The [`TaskError`] of the first item, in input order, that failed.
    pub fn get(mut self) -> Result<Vec<R>, TaskError> {
        self.take(None)
    }

    /// As [`get`](MapResult::get), waiting at most `timeout`; [`TaskError::NotReady`] if some
    /// item is still running then.
    ///
    /// # Errors
    ///
    /// As for [`get`](MapResult::get), plus `NotReady`, and [`TaskError::AlreadyTaken`] once the
    /// values were returned.
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<Vec<R>, TaskError> {
        self.take(Instant::now().checked_add(timeout))
            .map_err(|error| match error {
                TaskError::NotReady { .. } => TaskError::NotReady { waited: timeout },
                other => other,
            })
    }

    fn take(&mut self, deadline: Option<Instant>) -> Result<Vec<R>, TaskError> {
        if self.taken {
            return Err(TaskError::AlreadyTaken);
        }
        let mut state = lock(&self.collector.state);
        while !state.finished() {
            match self.collector.finished.wait(state, deadline) {
                Some(next) => state = next,
                None => {
                    return Err(TaskError::NotReady {
                        waited: Duration::ZERO,
                    });
                }
            }
        }
        self.taken = true;
        // The failure stays: the items after it, still arriving, are not kept.
        match &state.failure {
            Some(error) => Err(error.clone()),
            None => Ok(std::mem::take(&mut state.values)),
        }
    }
}

impl<R> MapResult<R> {
    /// Whether every item has finished (as in Python, whatever `get` returned: after a failure,
    /// the items after it may still be running).
    pub fn ready(&self) -> bool {
        let state = lock(&self.collector.state);
        state.arrived >= state.len
    }

    /// Waits until every item has finished.
    pub fn wait(&self) {
        let mut state = lock(&self.collector.state);
        while state.arrived < state.len {
            state = self
                .collector
                .finished
                .wait(state, None)
                .expect("no deadline");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_keeps_nothing_that_arrives_after_its_failure_was_returned() {
        let collector = Arc::new(MapCollector::<u64>::new(4));
        let mut result = MapResult::new(Arc::clone(&collector));
        collector.deliver(0, Delivery::Failed(TaskError::Terminated));
        assert!(matches!(
            result.get_timeout(Duration::ZERO),
            Err(TaskError::Terminated)
        ));
        collector.deliver(2, Delivery::Failed(TaskError::Terminated));
        collector.deliver(1, Delivery::Failed(TaskError::Terminated));
        assert!(!result.ready());
        collector.deliver(3, Delivery::Failed(TaskError::Terminated));
        assert!(result.ready());
        assert!(lock(&collector.state).ahead.is_empty());
    }

    /// Counts its decodings.
    struct Counted;

    static DECODED: AtomicUsize = AtomicUsize::new(0);

    impl<'de> serde::Deserialize<'de> for Counted {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            DECODED.fetch_add(1, Ordering::Relaxed);
            <u64 as serde::Deserialize>::deserialize(deserializer).map(|_| Counted)
        }
    }

    fn reports(values: std::ops::Range<u64>) -> Delivery {
        let mut items = Items::default();
        for value in values {
            items
                .push_with(|out| {
                    crate::task::encode_report_into(&crate::task::Report::Returned(value), out);
                    Ok(())
                })
                .unwrap();
        }
        Delivery::Reports(items)
    }

    #[test]
    fn a_map_decodes_nothing_that_arrives_after_its_first_failure() {
        let collector = MapCollector::<Counted>::new(6);
        collector.deliver(0, reports(0..2));
        assert_eq!(DECODED.load(Ordering::Relaxed), 2);
        collector.deliver(2, Delivery::Failed(TaskError::Terminated));
        collector.deliver(3, reports(3..6));
        assert_eq!(
            DECODED.load(Ordering::Relaxed),
            2,
            "decoded after the failure"
        );
        let state = lock(&collector.state);
        assert_eq!(state.arrived, 6);
        assert!(state.failure.is_some() && state.ahead.is_empty());
    }
}
