//! Where a pool delivers results: [`AsyncResult`] for one task, [`MapResult`] and the `imap`
//! iterators for many. The pool hands each finished item's encoded report to a [`Sink`]; the
//! caller's thread decodes it, so the pool's own thread never decodes a result.

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::TaskError;
use crate::task::Report;

/// An item's outcome as the pool delivers it: the encoded report, or why there is none.
pub(crate) type Delivery = Result<Vec<u8>, TaskError>;

/// Receives the outcomes of the items it was given to.
pub(crate) trait Sink: Send + Sync {
    /// The outcome of item `index` of this sink.
    fn deliver(&self, index: usize, delivery: Delivery);
}

/// Decodes a report into the task's value or its failure.
pub(crate) fn decode<R: DeserializeOwned>(delivery: Delivery) -> Result<R, TaskError> {
    let bytes = delivery?;
    match codec::decode::<Report<R>>(&bytes) {
        Ok(Report::Returned(value)) => Ok(value),
        Ok(Report::Panicked(info)) => Err(TaskError::Panicked(info)),
        Ok(Report::Failed(reason)) => Err(TaskError::Failed(reason)),
        Err(error) => Err(TaskError::Decode {
            type_name: std::any::type_name::<R>(),
            len: bytes.len(),
            reason: error.to_string(),
        }),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The slot of one task's outcome.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    outcome: Mutex<Option<Delivery>>,
    ready: Condvar,
}

impl Sink for Slot {
    fn deliver(&self, _index: usize, delivery: Delivery) {
        *lock(&self.outcome) = Some(delivery);
        self.ready.notify_all();
    }
}

impl Slot {
    /// Waits until the outcome is there or `deadline` passes; returns the guard either way.
    fn wait_until(&self, deadline: Option<Instant>) -> MutexGuard<'_, Option<Delivery>> {
        let mut outcome = lock(&self.outcome);
        while outcome.is_none() {
            match deadline {
                None => {
                    outcome = self
                        .ready
                        .wait(outcome)
                        .unwrap_or_else(PoisonError::into_inner)
                }
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    outcome = self
                        .ready
                        .wait_timeout(outcome, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
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

impl<R: DeserializeOwned> AsyncResult<R> {
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
                decode(delivery)
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
                Ok(bytes) => crate::task::is_returned(bytes),
                Err(_) => false,
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
#[derive(Debug, Default)]
pub(crate) struct Collector {
    state: Mutex<Collected>,
    arrived: Condvar,
}

#[derive(Debug, Default)]
struct Collected {
    outcomes: HashMap<usize, Delivery>,
    /// Indexes in the order their outcomes arrived (for `imap_unordered`).
    arrivals: VecDeque<usize>,
}

impl Sink for Collector {
    fn deliver(&self, index: usize, delivery: Delivery) {
        let mut state = lock(&self.state);
        state.outcomes.insert(index, delivery);
        state.arrivals.push_back(index);
        drop(state);
        self.arrived.notify_all();
    }
}

impl Collector {
    /// Waits for the outcome of item `index` (until `deadline`) and takes it.
    pub(crate) fn take(&self, index: usize, deadline: Option<Instant>) -> Option<Delivery> {
        let mut state = lock(&self.state);
        loop {
            if let Some(delivery) = state.outcomes.remove(&index) {
                return Some(delivery);
            }
            state = self.wait(state, deadline)?;
        }
    }

    /// Waits for the outcome of any item not yet taken, and takes it.
    pub(crate) fn take_any(&self) -> (usize, Delivery) {
        let mut state = lock(&self.state);
        loop {
            while let Some(index) = state.arrivals.pop_front() {
                if let Some(delivery) = state.outcomes.remove(&index) {
                    return (index, delivery);
                }
            }
            state = self.wait(state, None).expect("no deadline");
        }
    }

    /// How many outcomes are there, not yet taken.
    pub(crate) fn count(&self) -> usize {
        lock(&self.state).outcomes.len()
    }

    /// Waits until `count` outcomes are there (until `deadline`); returns whether they are.
    pub(crate) fn wait_for(&self, count: usize, deadline: Option<Instant>) -> bool {
        let mut state = lock(&self.state);
        while state.outcomes.len() < count {
            match self.wait(state, deadline) {
                Some(next) => state = next,
                None => return false,
            }
        }
        true
    }

    fn wait<'a>(
        &'a self,
        state: MutexGuard<'a, Collected>,
        deadline: Option<Instant>,
    ) -> Option<MutexGuard<'a, Collected>> {
        match deadline {
            None => Some(
                self.arrived
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            ),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                Some(
                    self.arrived
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0,
                )
            }
        }
    }
}

/// The results of [`Pool::map_async`](crate::Pool::map_async), in input order.
#[derive(Debug)]
#[must_use = "the tasks run anyway; the handle is how their results are read"]
pub struct MapResult<R> {
    collector: Arc<Collector>,
    len: usize,
    taken: bool,
    _output: PhantomData<fn() -> R>,
}

impl<R: DeserializeOwned> MapResult<R> {
    pub(crate) fn new(collector: Arc<Collector>, len: usize) -> Self {
        MapResult {
            collector,
            len,
            taken: false,
            _output: PhantomData,
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
        if !self.collector.wait_for(self.len, deadline) {
            return Err(TaskError::NotReady {
                waited: Duration::ZERO,
            });
        }
        self.taken = true;
        (0..self.len)
            .map(|index| decode(self.collector.take(index, None).expect("all arrived")))
            .collect()
    }
}

impl<R> MapResult<R> {
    /// Whether every item has finished.
    pub fn ready(&self) -> bool {
        self.taken || self.collector.count() >= self.len
    }

    /// Waits until every item has finished.
    pub fn wait(&self) {
        if !self.taken {
            self.collector.wait_for(self.len, None);
        }
    }
}
