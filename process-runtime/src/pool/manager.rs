//! The pool's state and its manager thread.
//!
//! Work waits in one queue of *units*: the items of one task call (an `apply`) or of a chunk of
//! a `map`, encoded one after the other in one buffer. Whichever thread makes room — a caller
//! submitting work, or the manager receiving results — moves units from the queue to workers
//! ([`State::dispatch`]). Each worker gets at most a *window* of items at a time: one item for
//! tasks that take a while (so an idle worker is never left waiting while another holds work),
//! up to [`MAX_WINDOW`] for tiny ones (so a worker never waits for the next message), sized from
//! the measured time per item.
//!
//! Batches are encoded under the state lock and queued on the worker's [`Link`]; they are sent
//! after the lock is released, in order, so that a worker busy with a long task never blocks the
//! pool's lock on a full socket.
//!
//! The manager thread waits on every worker's result channel at once. The reports of a run of a
//! unit's items are handed to the unit's sink in one piece. A closed channel means the worker
//! ended: if it died, the item it was running (its [`Progress`] cell says which) fails with the
//! cause, the items it held and had not reported go back to the front of the queue, and a
//! replacement is started.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ipc_channel::ipc::{self, IpcReceiverSet, IpcSelectionResult, IpcSender};

use super::result::{Delivery, Sink};
use super::worker::{
    self, FromWorker, Items, Progress, State as Running, ToWorker, UnitMsg, WorkerConfig,
};
use crate::StartMethod;
use crate::attach::{self, Nested, Payload};
use crate::children::Child;
use crate::codec::{self, EncodeError};
use crate::current;
use crate::error::{PoolError, SpawnError, TaskError};
use crate::spawn::{self, Extras, Job, Work};
use crate::sys::ExitStatus;
use crate::wire::{self, Bytes};

/// The most items a worker holds at once.
const MAX_WINDOW: usize = 4096;
/// How much work, in time, a worker's window should hold.
const WINDOW_TARGET_NANOS: f64 = 2_000_000.0;
/// How many batches a worker may hold at once.
const MAX_BATCHES_IN_FLIGHT: usize = 2;
/// How many workers in a row may die before reporting any result before the pool gives up.
const STARTUP_DEATHS_PER_PROCESS: usize = 3;

/// What a pool is configured with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) processes: usize,
    pub(crate) method: StartMethod,
    pub(crate) initializer: Option<(String, Nested)>,
    pub(crate) max_tasks: Option<u64>,
    pub(crate) task_timeout: Option<Duration>,
}

/// What a caller submits: one unit of work.
pub(crate) struct Request {
    pub(crate) task: &'static str,
    pub(crate) items: Items,
    pub(crate) sink: Arc<dyn Sink>,
    /// The sink's index of the first item.
    pub(crate) first: usize,
}

struct Unit {
    id: u64,
    task: &'static str,
    items: Items,
    sink: Arc<dyn Sink>,
    first: usize,
    /// How many of its items have been delivered (a unit may be reported in parts).
    reported: usize,
}

impl Unit {
    fn left(&self) -> usize {
        self.items.len() - self.reported
    }

    /// Fails items `range` with `error`.
    fn fail(&self, range: std::ops::Range<usize>, error: &TaskError) {
        for index in range {
            self.sink
                .deliver(self.first + index, Delivery::Failed(error.clone()));
        }
    }

    /// Fails the items not yet reported with `error`.
    fn fail_rest(&self, error: &TaskError) {
        self.fail(self.reported..self.items.len(), error);
    }
}

/// The sending side of a worker's inbox, with the batches waiting to be sent on it.
struct Link {
    sender: IpcSender<Payload>,
    outbox: Mutex<VecDeque<Payload>>,
    sending: Mutex<()>,
}

impl Link {
    fn push(&self, batch: Payload) {
        lock(&self.outbox).push_back(batch);
    }

    /// Sends what is queued, in order. Whoever holds `sending` sends; a caller that finds it
    /// taken leaves its batch to that holder, who looks again after letting go.
    fn flush(&self) {
        loop {
            let Ok(sending) = self.sending.try_lock() else {
                return;
            };
            while let Some(batch) = lock(&self.outbox).pop_front() {
                // A send fails only if the worker is gone; its death is handled on its result
                // channel, which puts its items back in the queue.
                let _ = self.sender.send(batch);
            }
            drop(sending);
            if lock(&self.outbox).is_empty() {
                return;
            }
        }
    }
}

struct Worker {
    /// The id of its result channel in the manager's receiver set.
    key: u64,
    child: Arc<Child>,
    link: Arc<Link>,
    progress: Progress,
    in_flight: VecDeque<Unit>,
    /// How many of the units in flight each batch sent to it holds, oldest first.
    batches: VecDeque<usize>,
    /// Items given to it and not yet reported.
    in_flight_items: usize,
    units_assigned: u64,
    /// `max_tasks_per_child`: the worker exits after this many units.
    max_tasks: Option<u64>,
    killed_for_timeout: bool,
    stopping: bool,
    finished_any: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Closed,
    Terminated,
}

pub(crate) struct State {
    next_unit: u64,
    queue: VecDeque<Unit>,
    workers: Vec<Worker>,
    /// Workers being started outside the lock.
    starting: usize,
    phase: Phase,
    /// Set when the pool cannot run anything any more: its initializer failed, or workers die
    /// before doing anything. Every item gets this error.
    broken: Option<TaskError>,
    /// Items submitted whose outcome has not been delivered.
    outstanding: usize,
    /// Mean time per item, for the window.
    nanos_per_item: f64,
    startup_deaths: usize,
}

/// Results taken from workers, for their sinks: handed over by the manager thread once it has
/// let go of the lock and sent the workers their next batches, since a `map`'s sink decodes
/// there, which must hold up neither the workers nor a caller submitting work.
type Deliveries = Vec<(Arc<dyn Sink>, usize, Delivery)>;

/// What the pool and its manager share.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled when the manager thread has stopped.
    stopped: Condvar,
    config: Config,
    /// Wakes the manager: closing, terminating.
    wake: Mutex<wire::Sender>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A started worker, before it joins the pool.
struct Started {
    child: Arc<Child>,
    reports: wire::Receiver,
    link: Arc<Link>,
    progress: Progress,
}

fn start_worker(config: &Config) -> Result<Started, SpawnError> {
    let (inbox, inbox_rx) = ipc::channel().map_err(|e| SpawnError::os("create a channel", e))?;
    let progress = Progress::new().map_err(|e| {
        SpawnError::os(
            "create the worker's progress cell",
            std::io::Error::other(e),
        )
    })?;
    let worker_config = WorkerConfig {
        initializer: config.initializer.clone(),
        max_tasks: config.max_tasks,
        timed: config.task_timeout.is_some(),
    };
    let payload = attach::encode(&(&worker::pool_worker, &worker_config)).map_err(|source| {
        SpawnError::Encode {
            task: worker::WORKER_TASK,
            source,
        }
    })?;
    let job = Job {
        method: config.method,
        identity: current::next_child("PoolWorker", None, true),
        work: Work::Encoded {
            task: worker::WORKER_TASK,
            payload,
        },
        extras: Extras {
            inbox: Some(inbox_rx),
            shared: Some(progress.share()),
        },
    };
    let spawned = spawn::spawn(job)?;
    let link = Arc::new(Link {
        sender: inbox,
        outbox: Mutex::new(VecDeque::new()),
        sending: Mutex::new(()),
    });
    Ok(Started {
        child: spawned.child,
        reports: spawned
            .reports
            .into_channel()
            .ok_or_else(|| SpawnError::Bootstrap {
                reason: "a pool worker must report on a channel".to_owned(),
            })?,
        link,
        progress,
    })
}

impl Shared {
    /// Starts the workers and the manager thread.
    pub(crate) fn start(
        config: Config,
    ) -> Result<(Arc<Shared>, std::thread::JoinHandle<()>), PoolError> {
        let spawn_error = |e: &dyn std::fmt::Display| PoolError::Spawn(e.to_string());
        let mut set = IpcReceiverSet::new().map_err(|e| spawn_error(&e))?;
        let (wake, wake_rx) = wire::channel().map_err(|e| spawn_error(&e))?;
        let wake_key = set.add(wake_rx).map_err(|e| spawn_error(&e))?;
        let mut workers = Vec::with_capacity(config.processes);
        for _ in 0..config.processes {
            let started = start_worker(&config).map_err(|e| spawn_error(&e))?;
            workers.push(
                Worker::new(&mut set, started, config.max_tasks).map_err(|e| spawn_error(&e))?,
            );
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_unit: 1,
                queue: VecDeque::new(),
                workers,
                starting: 0,
                phase: Phase::Running,
                broken: None,
                outstanding: 0,
                nanos_per_item: 0.0,
                startup_deaths: 0,
            }),
            stopped: Condvar::new(),
            config,
            wake: Mutex::new(wake),
        });
        let manager = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("process-tasks-pool".to_owned())
            .spawn(move || manager.run(set, wake_key))
            .map_err(|e| spawn_error(&e))?;
        Ok((shared, handle))
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Queues units of work and hands them to workers with room. `requests` is emptied, unless
    /// the pool refuses them: then they are left there for the caller to fail.
    pub(crate) fn submit(&self, requests: &mut Vec<Request>) -> Result<(), PoolError> {
        let links = {
            let mut state = lock(&self.state);
            match state.phase {
                Phase::Running => {}
                Phase::Closed => return Err(PoolError::Closed),
                Phase::Terminated => return Err(PoolError::Terminated),
            }
            for Request {
                task,
                items,
                sink,
                first,
            } in requests.drain(..)
            {
                if items.is_empty() {
                    continue;
                }
                let unit = state.new_unit(task, items, sink, first);
                if let Some(error) = &state.broken {
                    unit.fail_rest(error);
                    continue;
                }
                state.outstanding += unit.items.len();
                state.queue.push_back(unit);
            }
            state.dispatch()
        };
        links.iter().for_each(|link| link.flush());
        Ok(())
    }

    /// Takes no more work; the manager stops the workers once the queue is done.
    pub(crate) fn close(&self) {
        let mut state = lock(&self.state);
        if state.phase == Phase::Running {
            state.phase = Phase::Closed;
        }
        drop(state);
        self.wake();
    }

    /// Kills the workers and fails every item not finished.
    pub(crate) fn terminate(&self) {
        let mut state = lock(&self.state);
        state.phase = Phase::Terminated;
        let failed = state.withdraw_all();
        state.outstanding = 0;
        drop(state);
        for unit in failed {
            unit.fail_rest(&TaskError::Terminated);
        }
        self.wake();
    }

    pub(crate) fn worker_pids(&self) -> Vec<u32> {
        lock(&self.state)
            .workers
            .iter()
            .map(|w| w.child.pid() as u32)
            .collect()
    }

    /// Whether `join` may wait: the pool was closed or terminated.
    pub(crate) fn is_running(&self) -> bool {
        lock(&self.state).phase == Phase::Running
    }

    fn wake(&self) {
        let _ = lock(&self.wake).send(Payload::default());
    }

    /// Waits until the manager thread has stopped.
    pub(crate) fn wait_stopped(&self) {
        let mut state = lock(&self.state);
        while !state.is_finished() {
            state = self
                .stopped
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The manager thread.
    fn run(self: Arc<Self>, mut set: IpcReceiverSet, wake_key: u64) {
        loop {
            let timeout = lock(&self.state).next_check(&self.config);
            let events = match timeout {
                None => set.select().unwrap_or_default(),
                Some(timeout) => set.try_select_timeout(timeout).unwrap_or_default(),
            };
            let mut dead = Vec::new();
            let mut deliveries = Deliveries::new();
            let mut state = lock(&self.state);
            for event in events {
                match event {
                    IpcSelectionResult::MessageReceived(key, _) if key == wake_key => {}
                    IpcSelectionResult::MessageReceived(key, message) => {
                        state.on_message(key, message.to::<Payload>().ok(), &mut deliveries);
                    }
                    IpcSelectionResult::ChannelClosed(key) => {
                        if let Some(index) = state.workers.iter().position(|w| w.key == key) {
                            dead.push(state.workers.swap_remove(index));
                        }
                    }
                }
            }
            for worker in dead {
                state.on_death(worker, &self.config);
            }
            state.enforce_timeout(&self.config);
            if state.phase == Phase::Terminated {
                for worker in &state.workers {
                    let _ = worker.child.signal(libc::SIGKILL);
                }
            }
            let mut links = state.dispatch();
            links.extend(state.stop_idle_workers());
            let wanted = state.wanted_workers(&self.config);
            let to_start = wanted.saturating_sub(state.workers.len() + state.starting);
            state.starting += to_start;
            let finished = state.is_finished();
            drop(state);
            links.iter().for_each(|link| link.flush());
            for (sink, first, delivery) in deliveries {
                sink.deliver(first, delivery);
            }
            for _ in 0..to_start {
                self.replace_worker(&mut set);
            }
            if finished {
                self.stopped.notify_all();
                return;
            }
        }
    }

    /// Starts one worker (outside the lock) and adds it to the pool.
    fn replace_worker(&self, set: &mut IpcReceiverSet) {
        let started = start_worker(&self.config)
            .map_err(|e| e.to_string())
            .and_then(|started| {
                Worker::new(set, started, self.config.max_tasks).map_err(|e| e.to_string())
            });
        let mut state = lock(&self.state);
        state.starting -= 1;
        let links = match started {
            Ok(worker) => {
                state.workers.push(worker);
                state.dispatch()
            }
            Err(reason) => {
                if state.workers.is_empty() && state.starting == 0 {
                    state.break_pool(TaskError::Pool(PoolError::Spawn(reason)));
                }
                Vec::new()
            }
        };
        drop(state);
        links.iter().for_each(|link| link.flush());
    }
}

impl Worker {
    fn new(
        set: &mut IpcReceiverSet,
        started: Started,
        max_tasks: Option<u64>,
    ) -> std::io::Result<Self> {
        let key = set.add(started.reports)?;
        Ok(Worker {
            key,
            child: started.child,
            link: started.link,
            progress: started.progress,
            in_flight: VecDeque::new(),
            batches: VecDeque::new(),
            in_flight_items: 0,
            units_assigned: 0,
            max_tasks,
            killed_for_timeout: false,
            stopping: false,
            finished_any: false,
        })
    }

    /// Whether it may be sent another batch.
    fn has_room(&self) -> bool {
        !self.stopping && !self.killed_for_timeout && self.batches.len() < MAX_BATCHES_IN_FLIGHT
    }

    /// How many more units this worker may be given under `max_tasks_per_child`.
    fn quota_left(&self) -> Option<u64> {
        self.max_tasks
            .map(|max| max.saturating_sub(self.units_assigned))
    }
}

impl State {
    fn new_unit(
        &mut self,
        task: &'static str,
        items: Items,
        sink: Arc<dyn Sink>,
        first: usize,
    ) -> Unit {
        self.next_unit += 1;
        Unit {
            id: self.next_unit,
            task,
            items,
            sink,
            first,
            reported: 0,
        }
    }

    fn is_finished(&self) -> bool {
        self.phase != Phase::Running
            && self.outstanding == 0
            && self.workers.is_empty()
            && self.starting == 0
    }

    /// How many items a worker may hold.
    fn window(&self) -> usize {
        if self.nanos_per_item <= 0.0 {
            return 1;
        }
        ((WINDOW_TARGET_NANOS / self.nanos_per_item) as usize).clamp(1, MAX_WINDOW)
    }

    /// Moves queued units to workers with room; returns the links to flush.
    fn dispatch(&mut self) -> Vec<Arc<Link>> {
        let mut links = Vec::new();
        if self.phase == Phase::Terminated || self.queue.is_empty() {
            return links;
        }
        let window = self.window();
        let budget = wire::message_budget();
        // Only the workers with room, least loaded first, so that with a window of one every
        // idle worker gets a unit. Two batches in flight keep a worker busy: while it runs one,
        // the next is already in its socket. Work that comes meanwhile waits in the queue and
        // goes out as one batch when results come back, instead of one message per task. When
        // every worker has its two (a caller submitting faster than they run), nothing is
        // collected: no allocation on that path.
        let mut order: Vec<usize> = (0..self.workers.len())
            .filter(|&i| self.workers[i].has_room())
            .collect();
        order.sort_by_key(|&i| self.workers[i].in_flight_items);
        for i in order {
            if self.queue.is_empty() {
                break;
            }
            let worker = &mut self.workers[i];
            let mut units = Vec::new();
            let mut items = worker.in_flight_items;
            // Each unit fits in a message (see `Chunker`); a batch takes units while they fit,
            // in attachments and in bytes.
            let mut attached = 0;
            let mut bytes = 0;
            while let Some(front) = self.queue.front() {
                if items >= window && items > 0 {
                    break;
                }
                let attaching = front.items.shared.len();
                let size = front.items.wire_size();
                if !units.is_empty()
                    && (attached + attaching > attach::MAX_PER_MESSAGE || bytes + size > budget)
                {
                    break;
                }
                attached += attaching;
                bytes += size;
                if worker
                    .quota_left()
                    .is_some_and(|left| left <= units.len() as u64)
                {
                    break;
                }
                items += front.left();
                units.push(self.queue.pop_front().expect("front exists"));
            }
            if units.is_empty() {
                continue;
            }
            match encode_batch(&units) {
                Ok(batch) => {
                    worker.link.push(batch);
                    worker.units_assigned += units.len() as u64;
                    worker.batches.push_back(units.len());
                    worker.in_flight_items = items;
                    worker.in_flight.extend(units);
                    links.push(Arc::clone(&worker.link));
                }
                Err(error) => {
                    // Cannot happen for well-formed items; fail them rather than lose them.
                    let error = TaskError::Encode(error.to_string());
                    for unit in units {
                        self.outstanding -= unit.left();
                        unit.fail_rest(&error);
                    }
                }
            }
        }
        links
    }

    /// A message on worker `key`'s result channel (`None`: it did not decode at all).
    fn on_message(&mut self, key: u64, payload: Option<Payload>, deliveries: &mut Deliveries) {
        let Some(index) = self.workers.iter().position(|w| w.key == key) else {
            return;
        };
        let (bytes, shared) = match payload {
            Some(Payload { bytes, shared }) => (Some(bytes.0), shared),
            None => (None, Vec::new()),
        };
        let mut shared = shared.into_iter();
        match bytes
            .as_deref()
            .and_then(|bytes| codec::decode_borrowed::<FromWorker<'_>>(bytes).ok())
        {
            Some(FromWorker::Results { parts, busy_nanos }) => {
                let count: usize = parts.iter().map(|part| part.ends.len()).sum();
                if count > 0 {
                    let per_item = busy_nanos as f64 / count as f64;
                    self.nanos_per_item = if self.nanos_per_item <= 0.0 {
                        per_item
                    } else {
                        0.8 * self.nanos_per_item + 0.2 * per_item
                    };
                }
                let worker = &mut self.workers[index];
                worker.finished_any = true;
                for part in parts {
                    let len = part.ends.len();
                    let attached = part.shared.last().copied().unwrap_or(0);
                    let reports = Items {
                        bytes: crate::wire::copy_to_vec(part.reports),
                        ends: part.ends,
                        shared: shared.by_ref().take(attached as usize).collect(),
                        shared_ends: part.shared,
                    };
                    if !worker.deliver(part.unit, part.first as usize, reports, deliveries) {
                        // Results for items it does not hold: the worker is confused. Kill it;
                        // its items go to another worker.
                        let _ = worker.child.signal(libc::SIGKILL);
                        break;
                    }
                    self.outstanding -= len;
                }
                self.startup_deaths = 0;
            }
            Some(FromWorker::InitializerFailed(reason)) => {
                self.break_pool(TaskError::InitializerFailed(reason));
            }
            None => {
                // Corrupt bytes from a worker: never trusted, never a hang. The worker is killed
                // and its items go to another.
                let _ = self.workers[index].child.signal(libc::SIGKILL);
            }
        }
    }

    /// A worker's result channel closed: it ended. Reap it, fail the item it was running, put
    /// the rest back at the front of the queue.
    fn on_death(&mut self, mut worker: Worker, config: &Config) {
        let status = reap(&worker.child);
        let progress = worker.progress.state();
        let running = match progress {
            Running::Running { unit, index, .. } => Some((unit, index as usize)),
            _ => None,
        };
        let mut back = Vec::new();
        for unit in worker.in_flight.drain(..) {
            let rest = unit.reported..unit.items.len();
            match running {
                Some((id, index)) if id == unit.id && rest.contains(&index) => {
                    self.outstanding -= 1;
                    let error = match config.task_timeout {
                        Some(limit) if worker.killed_for_timeout => TaskError::Timeout { limit },
                        _ => TaskError::WorkerDied {
                            pid: worker.child.pid() as u32,
                            status: describe(status),
                        },
                    };
                    unit.fail(index..index + 1, &error);
                    // Before it: finished but not reported, so run again. After it: not run.
                    for range in [rest.start..index, index + 1..rest.end] {
                        if !range.is_empty() {
                            back.push(self.part_of(&unit, range));
                        }
                    }
                }
                _ if unit.reported == 0 => back.push(unit),
                _ => back.push(self.part_of(&unit, rest)),
            }
        }
        for unit in back.into_iter().rev() {
            self.queue.push_front(unit);
        }
        let clean_exit = matches!(status, Some(ExitStatus::Exited(0)));
        if !worker.finished_any
            && running.is_none()
            && !clean_exit
            && self.phase != Phase::Terminated
        {
            self.startup_deaths += 1;
            if self.startup_deaths >= STARTUP_DEATHS_PER_PROCESS * config.processes {
                // Say which: a worker that never started a task points at its start, one that
                // ran tasks and sent nothing at the sending of their results.
                let when = if progress == Running::Idle {
                    "before it ran any task"
                } else {
                    "after running tasks whose results it never sent"
                };
                self.break_pool(TaskError::Pool(PoolError::Spawn(format!(
                    "{} workers in a row died before reporting any result (the last {}, {when})",
                    self.startup_deaths,
                    describe(status)
                ))));
            }
        }
        if self.phase == Phase::Terminated {
            for unit in std::mem::take(&mut self.queue) {
                unit.fail_rest(&TaskError::Terminated);
            }
            self.outstanding = 0;
        }
    }

    /// A new unit of items `range` of `unit`.
    fn part_of(&mut self, unit: &Unit, range: std::ops::Range<usize>) -> Unit {
        let first = unit.first + range.start;
        self.new_unit(
            unit.task,
            unit.items.slice(range),
            Arc::clone(&unit.sink),
            first,
        )
    }

    /// Fails everything and refuses what comes: the pool cannot run tasks.
    fn break_pool(&mut self, error: TaskError) {
        self.broken = Some(error.clone());
        for unit in self.withdraw_all() {
            self.outstanding -= unit.left();
            unit.fail_rest(&error);
        }
    }

    /// Kills every worker and takes back every unit not finished: the queued ones and the ones
    /// the workers hold.
    fn withdraw_all(&mut self) -> Vec<Unit> {
        let mut units: Vec<Unit> = self.queue.drain(..).collect();
        for worker in &mut self.workers {
            let _ = worker.child.signal(libc::SIGKILL);
            units.extend(worker.in_flight.drain(..));
            worker.batches.clear();
            worker.in_flight_items = 0;
        }
        units
    }

    /// Kills workers whose current item has run longer than the task timeout.
    fn enforce_timeout(&mut self, config: &Config) {
        let Some(limit) = config.task_timeout else {
            return;
        };
        let now = worker::coarse_nanos();
        for worker in &mut self.workers {
            if let Running::Running { started_nanos, .. } = worker.progress.state() {
                if !worker.killed_for_timeout
                    && now.saturating_sub(started_nanos) > limit.as_nanos() as u64
                {
                    worker.killed_for_timeout = true;
                    let _ = worker.child.signal(libc::SIGKILL);
                }
            }
        }
    }

    /// How long the manager may sleep before it must check the timeout again.
    fn next_check(&self, config: &Config) -> Option<Duration> {
        let limit = config.task_timeout?;
        let now = worker::coarse_nanos();
        self.workers
            .iter()
            .filter(|w| !w.in_flight.is_empty())
            .map(|w| match w.progress.state() {
                Running::Running { started_nanos, .. } => {
                    let deadline = started_nanos + limit.as_nanos() as u64;
                    Duration::from_nanos(deadline.saturating_sub(now)) + Duration::from_millis(1)
                }
                _ => limit,
            })
            .min()
    }

    /// Once nothing is left to do in a closed pool, tells every worker to stop.
    fn stop_idle_workers(&mut self) -> Vec<Arc<Link>> {
        if self.phase != Phase::Closed || self.outstanding != 0 {
            return Vec::new();
        }
        let Ok(stop) = codec::encode(&ToWorker::Stop) else {
            return Vec::new();
        };
        self.workers
            .iter_mut()
            .filter(|w| !w.stopping)
            .map(|w| {
                w.stopping = true;
                w.link.push(Payload::plain(stop.clone()));
                Arc::clone(&w.link)
            })
            .collect()
    }

    /// How many workers the pool should have now.
    fn wanted_workers(&self, config: &Config) -> usize {
        match self.phase {
            _ if self.broken.is_some() => 0,
            Phase::Terminated => 0,
            Phase::Closed if self.outstanding == 0 => 0,
            _ => config.processes,
        }
    }
}

impl Worker {
    /// Adds the reports of items `first..` of unit `id` to `deliveries`, for its sink. They must
    /// be the next items of the oldest unit it holds; `false` if they are not.
    fn deliver(
        &mut self,
        id: u64,
        first: usize,
        reports: Items,
        deliveries: &mut Deliveries,
    ) -> bool {
        let Some(unit) = self.in_flight.front_mut() else {
            return false;
        };
        let count = reports.ends.len();
        // A worker never sends an empty part: one would be a run of nothing at the place of a
        // real one.
        if unit.id != id || unit.reported != first || count == 0 || count > unit.left() {
            return false;
        }
        deliveries.push((
            Arc::clone(&unit.sink),
            unit.first + first,
            Delivery::Reports(reports),
        ));
        unit.reported += count;
        self.in_flight_items -= count;
        if unit.left() == 0 {
            self.in_flight.pop_front();
            if let Some(units) = self.batches.front_mut() {
                *units -= 1;
                if *units == 0 {
                    self.batches.pop_front();
                }
            }
        }
        true
    }
}

/// Encodes a batch: the distinct task names, and each unit's items not yet reported, with the
/// index of its task's name. The items' shared memory segments go beside the bytes, in order.
fn encode_batch(units: &[Unit]) -> Result<Payload, EncodeError> {
    let mut names: Vec<&str> = Vec::new();
    let mut messages = Vec::with_capacity(units.len());
    let mut shared = Vec::new();
    for unit in units {
        debug_assert_eq!(unit.reported, 0, "a unit is sent whole");
        let task = match names.iter().position(|name| *name == unit.task) {
            Some(index) => index,
            None => {
                names.push(unit.task);
                names.len() - 1
            }
        } as u32;
        shared.extend(unit.items.shared.iter().cloned());
        messages.push(UnitMsg {
            id: unit.id,
            task,
            ends: Cow::Borrowed(&unit.items.ends),
            items: &unit.items.bytes,
            shared: Cow::Borrowed(&unit.items.shared_ends),
        });
    }
    let mut bytes = Vec::new();
    let size: usize = units
        .iter()
        .map(|u| u.items.bytes.len() + 8 * u.items.len())
        .sum();
    crate::wire::reserve(&mut bytes, size + 64);
    codec::encode_into(
        &ToWorker::Batch {
            names,
            units: messages,
        },
        &mut bytes,
    )?;
    Ok(Payload {
        bytes: Bytes(bytes),
        shared,
    })
}

/// Waits for a worker whose result channel closed; it is exiting. One that lingers is killed.
fn reap(child: &Child) -> Option<ExitStatus> {
    match child.wait_until(Some(Instant::now() + Duration::from_secs(5))) {
        Ok(Some(status)) => Some(status),
        _ => {
            let _ = child.signal(libc::SIGKILL);
            child.wait().ok()
        }
    }
}

fn describe(status: Option<ExitStatus>) -> String {
    match status {
        Some(ExitStatus::Exited(code)) => format!("exited with code {code}"),
        Some(ExitStatus::Signaled(signal)) => {
            format!(
                "was killed by signal {signal} ({})",
                crate::error::signal_name(signal)
            )
        }
        None => "ended, how is unknown".to_owned(),
    }
}
