//! Where a pool delivers results: [`AsyncResult`] for one task, [`MapResult`] and the `imap`
//! iterators for many. The pool hands the encoded reports of a run of items to a [`Sink`] in one
//! piece. A `map`'s are decoded by the pool's own thread as they arrive (its caller is busy
//! encoding the rest); the others' by the caller's thread, as it takes them.

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::worker::Items;
use crate::attach::Attachments;
use crate::error::TaskError;

/// A delivered run of reports, as [`Items`] whose encoded values are the items' reports.
impl Items {
    /// Decodes the report of item `index` into its value or its failure.
    fn decode<R: DeserializeOwned + 'static>(&self, index: usize) -> Result<R, TaskError> {
        decode(
            self.get(index).unwrap_or_default(),
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
                first.unwrap_or_else(|| decode(&[], &mut Vec::new()))
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

/// Decodes a run of outcomes: the values up to the first failure, or that failure. A panic in a
/// `Deserialize` impl is that item's failure, not the pool thread's end. The attachments are
/// moved into the values, not copied.
fn decode_run<R: DeserializeOwned + 'static>(delivery: Delivery) -> Result<Vec<R>, TaskError> {
    match delivery {
        Delivery::Reports(mut reports) => {
            let mut values = Vec::with_capacity(reports.len());
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
            match failure {
                Some(error) => Err(error),
                None => Ok(values),
            }
        }
        Delivery::Failed(error) => Err(error),
    }
}

/// Decodes a report into the task's value or its failure.
fn decode<R: DeserializeOwned + 'static>(
    bytes: &[u8],
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
                Delivery::Reports(reports) => reports.get(0).is_some_and(crate::task::is_returned),
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

/// Outcomes of many items, by index: the sink of `map`, `map_async` and the `imap` iterators.
#[derive(Default)]
pub(crate) struct Collector {
    state: Mutex<Collected>,
    arrived: Signal,
    /// For `map`: decodes each run as it is delivered, in the pool's thread, while the caller's
    /// thread goes on encoding the next chunks. `None`: the reader decodes (the `imap`s).
    decoder: Option<Decoder>,
}

/// Decodes a run into a `Result<Vec<R>, TaskError>`, type-erased: the values up to the first
/// failure, or that failure.
type Decoder = Box<dyn Fn(Delivery) -> Box<dyn Any + Send> + Send + Sync>;

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("state", &self.state)
            .field("decodes_on_delivery", &self.decoder.is_some())
            .finish()
    }
}

#[derive(Debug, Default)]
struct Collected {
    /// Deliveries not yet consumed, by their first index; `taken` items of each are consumed.
    runs: BTreeMap<usize, (Delivery, usize)>,
    /// Runs decoded on delivery, by their first index (see [`Collector::decoder`]).
    decoded: BTreeMap<usize, Box<dyn Any + Send>>,
    /// First indexes of runs with items left, in the order they arrived (for `imap_unordered`).
    arrivals: VecDeque<usize>,
    /// How many items have arrived in all.
    arrived: usize,
}

impl Sink for Collector {
    fn deliver(&self, first: usize, delivery: Delivery) {
        if let Some(decoder) = &self.decoder {
            // Decoded before the lock is taken: the reader is not held up meanwhile.
            let len = delivery.len();
            let values = decoder(delivery);
            let mut state = lock(&self.state);
            state.arrived += len;
            state.decoded.insert(first, values);
            self.arrived.notify();
            return;
        }
        let mut state = lock(&self.state);
        state.arrived += delivery.len();
        state.runs.insert(first, (delivery, 0));
        state.arrivals.push_back(first);
        self.arrived.notify();
    }
}

impl Collector {
    /// A collector that decodes each run into `R`s as it is delivered, for a reader that takes
    /// the runs in order with [`take_decoded`](Collector::take_decoded).
    pub(crate) fn decoding<R: DeserializeOwned + Send + 'static>() -> Self {
        Collector {
            decoder: Some(Box::new(|delivery: Delivery| {
                Box::new(decode_run::<R>(delivery)) as Box<dyn Any + Send>
            })),
            ..Collector::default()
        }
    }

    /// Waits (until `deadline`) for the run that starts at item `first`, decoded on delivery,
    /// and takes it.
    fn take_decoded<R: 'static>(
        &self,
        first: usize,
        deadline: Option<Instant>,
    ) -> Option<Result<Vec<R>, TaskError>> {
        let mut state = lock(&self.state);
        loop {
            if let Some(values) = state.decoded.remove(&first) {
                return Some(match values.downcast::<Result<Vec<R>, TaskError>>() {
                    Ok(values) => *values,
                    Err(_) => Err(TaskError::Failed(
                        "a run of results was decoded as another type".to_owned(),
                    )),
                });
            }
            state = self.arrived.wait(state, deadline)?;
        }
    }

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

    /// How many items have arrived.
    fn arrived(&self) -> usize {
        lock(&self.state).arrived
    }

    /// Waits until `count` items have arrived (until `deadline`); returns whether they have.
    fn wait_for(&self, count: usize, deadline: Option<Instant>) -> bool {
        let mut state = lock(&self.state);
        while state.arrived < count {
            match self.arrived.wait(state, deadline) {
                Some(next) => state = next,
                None => return false,
            }
        }
        true
    }
}

/// The results of [`Pool::map_async`](crate::Pool::map_async), in input order.
#[derive(Debug)]
#[must_use = "the tasks run anyway; the handle is how their results are read"]
pub struct MapResult<R> {
    collector: Arc<Collector>,
    len: usize,
    /// The values decoded so far, in order: they are decoded as their runs arrive, while the
    /// workers go on with the rest.
    values: Mutex<Vec<R>>,
    taken: bool,
}

impl<R: DeserializeOwned + 'static> MapResult<R> {
    pub(crate) fn new(collector: Arc<Collector>, len: usize) -> Self {
        MapResult {
            collector,
            len,
            values: Mutex::new(Vec::new()),
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
        let values = self
            .values
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        values.reserve_exact(self.len - values.len());
        while values.len() < self.len {
            let Some(run) = self.collector.take_decoded::<R>(values.len(), deadline) else {
                // What was taken stays for the next call.
                return Err(TaskError::NotReady {
                    waited: Duration::ZERO,
                });
            };
            match run {
                Ok(run) => values.extend(run),
                Err(error) => {
                    self.taken = true;
                    return Err(error);
                }
            }
        }
        self.taken = true;
        Ok(std::mem::take(values))
    }
}

impl<R> MapResult<R> {
    /// Whether every item has finished.
    pub fn ready(&self) -> bool {
        self.taken || self.collector.arrived() >= self.len
    }

    /// Waits until every item has finished.
    pub fn wait(&self) {
        if !self.taken {
            self.collector.wait_for(self.len, None);
        }
    }
}
