//! A pool of long-lived worker processes (Python's `multiprocessing.Pool`), where one task that
//! crashes its worker fails alone.

mod manager;
mod result;
mod worker;

use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

pub use result::{AsyncResult, MapResult};

use manager::{Config, Request, Shared};
use result::{Collector, Delivery, MapCollector, Sink, Slot};
use worker::Items;

use crate::StartMethod;
use crate::attach::{self, Nested};
use crate::error::{PoolError, TaskError};
use crate::start_method::get_start_method;
use crate::task::Task;

/// A pool of worker processes that run tasks (Python's `multiprocessing.Pool`).
///
/// Workers are daemon children named `PoolWorker-N`. Each runs any registered task, one after the
/// other, for as long as the pool lives (or `max_tasks_per_child` tasks): no process is started
/// per task.
///
/// ```
/// use process_runtime::prelude::*;
///
/// #[process_task]
/// fn double(x: u64) -> u64 {
///     x * 2
/// }
///
/// let pool = Pool::new(2)?;
/// assert_eq!(pool.apply(double, 21)?, 42);
/// let pending = pool.apply_async(double, 5)?;
/// assert_eq!(pool.map(double, 0..5)?, [0, 2, 4, 6, 8]);
/// assert_eq!(pending.get()?, 10);
/// pool.close();
/// pool.join()?;
/// # Ok::<(), process_runtime::Error>(())
/// ```
///
/// # Failures stay with their task
///
/// A task that panics fails with [`TaskError::Panicked`]; its worker goes on. A worker that dies
/// while running a task (a segfault, an abort, `exit`, a `SIGKILL`, or a kill for exceeding
/// `task_timeout`) fails that task only, with [`TaskError::WorkerDied`] or
/// [`TaskError::Timeout`]: the pool starts a replacement, and every other task's result is
/// delivered. (Python's `Pool` hangs in this case; `concurrent.futures` breaks the whole pool.)
/// When the worker died in the middle of a chunk of a `map`, the items of that chunk it had
/// already finished are run again by another worker, since their results died with it.
///
/// # Ending
///
/// [`close`](Pool::close) then [`join`](Pool::join) lets the submitted work finish;
/// [`terminate`](Pool::terminate) kills the workers and fails what was not finished. Dropping a
/// pool closes and joins it: nothing submitted is lost. The workers die with the pool's process
/// even if it is killed.
pub struct Pool {
    shared: Arc<Shared>,
    manager: Mutex<Option<JoinHandle<()>>>,
    chunksize: Option<usize>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("processes", &self.shared.config().processes)
            .finish_non_exhaustive()
    }
}

/// Options of a [`Pool`], made by [`Pool::builder`].
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct PoolBuilder {
    processes: Option<usize>,
    start_method: Option<StartMethod>,
    initializer: Option<Result<(String, Nested), String>>,
    max_tasks_per_child: Option<u64>,
    chunksize: Option<usize>,
    task_timeout: Option<Duration>,
}

impl PoolBuilder {
    /// How many workers (Python's `processes`). The default is the number of CPUs available to
    /// this process. Zero is an error.
    pub fn processes(mut self, processes: usize) -> Self {
        self.processes = Some(processes);
        self
    }

    /// How the workers are started; the default is [`get_start_method`].
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.start_method = Some(method);
        self
    }

    /// A task each worker runs once, with `args`, before it takes any work (Python's
    /// `initializer` and `initargs`): to open a connection, load a model, set a global. If it
    /// fails, the pool fails every task with [`TaskError::InitializerFailed`] instead of
    /// starting workers forever.
    pub fn initializer<T: Task>(mut self, task: T, args: T::Args) -> Self {
        self.initializer = Some(
            attach::encode_with(|out| crate::task::encode_call(&task, &args, out))
                .map(|payload| (T::NAME.to_owned(), Nested::from(payload)))
                .map_err(|error| error.to_string()),
        );
        self
    }

    /// Replaces each worker after it has run this many tasks (a chunk of a map counts as one),
    /// as Python's `maxtasksperchild` does: a cure for leaks. By default workers live as long as
    /// the pool.
    pub fn max_tasks_per_child(mut self, tasks: u64) -> Self {
        self.max_tasks_per_child = Some(tasks);
        self
    }

    /// How many items of a `map`, `map_async` or `starmap` go to a worker at once. The default
    /// is Python's: the input's length divided by four times the number of workers, rounded up.
    /// `imap` and `imap_unordered` use 1 unless this is set.
    ///
    /// A chunk ends early where its encoded arguments reach what one message carries in one
    /// piece (about 200 KiB): a larger message travels in pieces, each waiting for the other
    /// side, which made a map of a million tiny items a third slower.
    pub fn chunksize(mut self, chunksize: usize) -> Self {
        self.chunksize = Some(chunksize);
        self
    }

    /// Kills a worker whose task runs longer than this; the task fails with
    /// [`TaskError::Timeout`] and a new worker takes the worker's place.
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// Starts the workers.
    ///
    /// # Errors
    ///
    /// [`PoolError`] if the options are invalid (no processes, a zero `chunksize` or
    /// `max_tasks_per_child`), the initializer's arguments do not encode, or a worker cannot be
    /// started.
    pub fn build(self) -> Result<Pool, PoolError> {
        let processes = match self.processes {
            Some(0) => return Err(PoolError::NoProcesses),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
        };
        if self.chunksize == Some(0) {
            return Err(PoolError::Invalid("chunksize must be at least 1"));
        }
        if self.max_tasks_per_child == Some(0) {
            return Err(PoolError::Invalid("max_tasks_per_child must be at least 1"));
        }
        let initializer = self.initializer.transpose().map_err(PoolError::Encode)?;
        let config = Config {
            processes,
            method: self.start_method.unwrap_or_else(get_start_method),
            initializer,
            max_tasks: self.max_tasks_per_child,
            task_timeout: self.task_timeout,
        };
        let (shared, manager) = Shared::start(config)?;
        Ok(Pool {
            shared,
            manager: Mutex::new(Some(manager)),
            chunksize: self.chunksize,
        })
    }
}

impl Pool {
    /// A pool of `processes` workers with the default options (Python's `Pool(processes)`).
    ///
    /// # Errors
    ///
    /// [`PoolError::NoProcesses`] for 0; [`PoolError::Spawn`] if a worker cannot start.
    pub fn new(processes: usize) -> Result<Pool, PoolError> {
        Pool::builder().processes(processes).build()
    }

    /// The options of a pool.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// The number of workers.
    pub fn processes(&self) -> usize {
        self.shared.config().processes
    }

    /// The pids of the workers running now. A worker that dies or retires is replaced by one with
    /// a new pid.
    pub fn worker_pids(&self) -> Vec<u32> {
        self.shared.worker_pids()
    }

    /// Runs `task` with `args` on a worker and waits for its value (Python's `apply`).
    ///
    /// # Errors
    ///
    /// [`TaskError`]: the task failed, or the pool refused it.
    pub fn apply<T: Task>(&self, task: T, args: T::Args) -> Result<T::Output, TaskError> {
        self.apply_async(task, args)?.get()
    }

    /// Submits `task` with `args` and returns at once (Python's `apply_async`); the result is
    /// read from the [`AsyncResult`].
    ///
    /// # Errors
    ///
    /// [`PoolError`] if the pool is closed or terminated. A failure of the task itself, even
    /// of encoding its argument, is in the `AsyncResult`.
    pub fn apply_async<T: Task>(
        &self,
        task: T,
        args: T::Args,
    ) -> Result<AsyncResult<T::Output>, PoolError> {
        let slot = Arc::new(Slot::default());
        let mut chunker = Chunker::new(&task, slot.clone(), 1);
        chunker.push(0, &args);
        crate::task::recycle(args);
        self.shared.submit(&mut chunker.finish())?;
        Ok(AsyncResult::new(slot))
    }

    /// Runs `task` on every item of `inputs` and returns the values in input order (Python's
    /// `map`). A task with several arguments takes tuples (Python's `starmap`).
    ///
    /// # Errors
    ///
    /// The first failure in input order; use [`imap`](Pool::imap) to get every item's outcome.
    pub fn map<T, I>(&self, task: T, inputs: I) -> Result<Vec<T::Output>, TaskError>
    where
        T: Task,
        I: IntoIterator<Item = T::Args>,
    {
        self.map_async(task, inputs)?.get()
    }

    /// [`map`](Pool::map) for tasks of several arguments, each item a tuple (Python's
    /// `starmap`). The same as `map`, under Python's name.
    ///
    /// # Errors
    ///
    /// As for [`map`](Pool::map).
    pub fn starmap<T, I>(&self, task: T, inputs: I) -> Result<Vec<T::Output>, TaskError>
    where
        T: Task,
        I: IntoIterator<Item = T::Args>,
    {
        self.map(task, inputs)
    }

    /// Submits `task` on every item of `inputs` and returns at once (Python's `map_async`).
    ///
    /// The inputs are read and encoded here, each chunk going to the workers as soon as it is
    /// encoded; the results are decoded by the pool's own thread as they arrive, as Python's
    /// result handler does, so a `Deserialize` impl of the result type runs there (one that
    /// panics fails its item with [`TaskError::Decode`]).
    ///
    /// # Errors
    ///
    /// [`PoolError`] if the pool is closed or terminated.
    pub fn map_async<T, I>(&self, task: T, inputs: I) -> Result<MapResult<T::Output>, PoolError>
    where
        T: Task,
        I: IntoIterator<Item = T::Args>,
    {
        let mut input = inputs.into_iter();
        let mut all_args = Vec::new();
        let mut input_failure = None;
        loop {
            match next_input(&mut input) {
                None => break,
                Some(Ok(args)) => all_args.push(args),
                Some(Err(reason)) => {
                    input_failure = Some(reason);
                    break;
                }
            }
        }
        let len = all_args.len() + usize::from(input_failure.is_some());
        let collector = Arc::new(MapCollector::<T::Output>::new(len));
        let chunksize = self
            .chunksize
            .unwrap_or_else(|| python_chunksize(all_args.len(), self.processes()));
        let mut chunker = Chunker::new(&task, collector.clone(), chunksize);
        for (index, args) in all_args.iter().enumerate() {
            chunker.push(index, args);
            // Each chunk goes as soon as it is encoded: the workers start on it while the rest
            // are encoded.
            if !chunker.requests.is_empty() {
                self.shared.submit(&mut chunker.requests)?;
            }
        }
        if let Some(reason) = input_failure {
            collector.deliver(all_args.len(), Delivery::Failed(TaskError::Input(reason)));
        }
        self.shared.submit(&mut chunker.finish())?;
        Ok(MapResult::new(collector))
    }

    /// Runs `task` on every item of `inputs`, yielding each outcome in input order as soon as it
    /// and the ones before it are done (Python's `imap`). The input is read lazily, with a
    /// bounded number of items in flight, so it may be endless.
    ///
    /// # Errors
    ///
    /// [`PoolError`] if the pool is closed or terminated; each item's failure is in its own
    /// `Result`.
    pub fn imap<T, I>(&self, task: T, inputs: I) -> Result<Imap<'_, T, I::IntoIter>, PoolError>
    where
        T: Task,
        I: IntoIterator<Item = T::Args>,
    {
        self.imap_with_order(task, inputs, true)
    }

    /// As [`imap`](Pool::imap), yielding outcomes in the order they finish (Python's
    /// `imap_unordered`).
    ///
    /// # Errors
    ///
    /// As for [`imap`](Pool::imap).
    pub fn imap_unordered<T, I>(
        &self,
        task: T,
        inputs: I,
    ) -> Result<Imap<'_, T, I::IntoIter>, PoolError>
    where
        T: Task,
        I: IntoIterator<Item = T::Args>,
    {
        self.imap_with_order(task, inputs, false)
    }

    fn imap_with_order<T, I>(
        &self,
        task: T,
        inputs: I,
        ordered: bool,
    ) -> Result<Imap<'_, T, I::IntoIter>, PoolError>
    where
        T: Task,
        I: IntoIterator<Item = T::Args>,
    {
        if !self.shared.is_running() {
            return Err(PoolError::Closed);
        }
        let chunksize = self.chunksize.unwrap_or(1);
        Ok(Imap {
            pool: self,
            task,
            input: Some(inputs.into_iter()),
            collector: Arc::new(Collector::default()),
            submitted: 0,
            yielded: 0,
            chunksize,
            limit: (self.processes() * chunksize * 4).max(1024),
            ordered,
        })
    }

    /// Takes no more work (Python's `close`); what was submitted still runs.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Kills the workers at once (Python's `terminate`); every task not finished fails with
    /// [`TaskError::Terminated`]. Returns when the workers are gone.
    pub fn terminate(&self) {
        self.shared.terminate();
        self.wait_manager();
    }

    /// Waits for the submitted work to finish and the workers to exit (Python's `join`).
    ///
    /// # Errors
    ///
    /// [`PoolError::StillRunning`] unless [`close`](Pool::close) or
    /// [`terminate`](Pool::terminate) was called first, as in Python.
    pub fn join(&self) -> Result<(), PoolError> {
        if self.shared.is_running() {
            return Err(PoolError::StillRunning);
        }
        self.wait_manager();
        Ok(())
    }

    fn wait_manager(&self) {
        self.shared.wait_stopped();
        let handle = self
            .manager
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.close();
        self.wait_manager();
    }
}

/// Encodes items into units of `chunksize` for the pool (fewer where a unit reaches the message
/// budget). An item whose arguments do not encode is failed on the spot and ends the unit
/// before it.
struct Chunker<'t, T> {
    task: &'t T,
    sink: Arc<dyn Sink>,
    chunksize: usize,
    /// [`message_budget`](crate::wire::message_budget): a chunk that reaches it ends there.
    budget: usize,
    items: Items,
    first: usize,
    requests: Vec<Request>,
}

impl<'t, T: Task> Chunker<'t, T> {
    fn new(task: &'t T, sink: Arc<dyn Sink>, chunksize: usize) -> Self {
        Chunker {
            task,
            sink,
            chunksize,
            budget: crate::wire::message_budget(),
            items: Items::default(),
            first: 0,
            requests: Vec::new(),
        }
    }

    /// Adds the item at the sink's `index`.
    fn push(&mut self, index: usize, args: &T::Args) {
        if self.items.is_empty() {
            self.first = index;
        }
        match self.items.push(self.task, args) {
            // A chunk holding half a message's attachments ends there, so that it always fits
            // in one message (each item takes at most half); so does one whose bytes would no
            // longer go in one piece.
            Ok(())
                if self.items.len() >= self.chunksize
                    || crate::wire::is_full(
                        self.items.wire_size(),
                        self.items.len(),
                        self.budget,
                    )
                    || self.items.shared.len() >= crate::attach::MAX_PER_VALUE =>
            {
                self.cut()
            }
            Ok(()) => {}
            Err(error) => {
                self.cut();
                self.sink.deliver(
                    index,
                    Delivery::Failed(TaskError::Encode(error.to_string())),
                );
            }
        }
    }

    fn cut(&mut self) {
        if !self.items.is_empty() {
            let items = std::mem::take(&mut self.items);
            self.requests.push(Request {
                task: T::NAME,
                items,
                sink: self.sink.clone(),
                first: self.first,
            });
        }
    }

    fn finish(mut self) -> Vec<Request> {
        self.cut();
        self.requests
    }
}

/// Python's default chunk size for `map`: `len / (4 * processes)`, rounded up.
fn python_chunksize(len: usize, processes: usize) -> usize {
    len.div_ceil(4 * processes.max(1)).max(1)
}

/// The next input item; a panic while producing it becomes an error for that item.
fn next_input<I: Iterator>(input: &mut I) -> Option<Result<I::Item, String>> {
    match catch_unwind(AssertUnwindSafe(|| input.next())) {
        Ok(item) => item.map(Ok),
        Err(payload) => Some(Err(crate::panic::message_of(payload.as_ref()))),
    }
}

/// The outcomes of [`Pool::imap`] and [`Pool::imap_unordered`]: one `Result` per input item.
pub struct Imap<'p, T: Task, I> {
    pool: &'p Pool,
    task: T,
    /// `None` once the input is exhausted (or failed).
    input: Option<I>,
    collector: Arc<Collector>,
    submitted: usize,
    yielded: usize,
    chunksize: usize,
    limit: usize,
    ordered: bool,
}

impl<T: Task, I> std::fmt::Debug for Imap<'_, T, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imap")
            .field("task", &T::NAME)
            .field("submitted", &self.submitted)
            .field("yielded", &self.yielded)
            .field("ordered", &self.ordered)
            .finish_non_exhaustive()
    }
}

impl<T: Task, I: Iterator<Item = T::Args>> Imap<'_, T, I> {
    /// Reads and submits input until `limit` items are in flight or the input ends.
    fn top_up(&mut self) {
        while self.submitted - self.yielded < self.limit {
            let Some(input) = self.input.as_mut() else {
                return;
            };
            let mut chunker = Chunker::new(&self.task, self.collector.clone(), self.chunksize);
            let mut exhausted = false;
            for _ in 0..self.chunksize {
                match next_input(input) {
                    None => {
                        exhausted = true;
                        break;
                    }
                    Some(Ok(args)) => chunker.push(self.submitted, &args),
                    Some(Err(reason)) => {
                        let failed = Delivery::Failed(TaskError::Input(reason));
                        self.collector.deliver(self.submitted, failed);
                        self.submitted += 1;
                        exhausted = true;
                        break;
                    }
                }
                self.submitted += 1;
            }
            let mut requests = chunker.finish();
            if exhausted {
                self.input = None;
            }
            if let Err(error) = self.pool.shared.submit(&mut requests) {
                // The refused requests are still there: their items fail with the refusal.
                for request in requests {
                    for index in request.first..request.first + request.items.len() {
                        self.collector
                            .deliver(index, Delivery::Failed(TaskError::Pool(error.clone())));
                    }
                }
            }
        }
    }
}

impl<T: Task, I: Iterator<Item = T::Args>> Iterator for Imap<'_, T, I> {
    type Item = Result<T::Output, TaskError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.top_up();
        if self.yielded == self.submitted {
            return None;
        }
        let value = if self.ordered {
            self.collector.take(self.yielded)
        } else {
            self.collector.take_any()
        };
        self.yielded += 1;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[crate::process_task(crate = crate)]
    fn echo_words(words: Vec<u64>) -> usize {
        words.len()
    }

    #[test]
    fn a_chunk_ends_where_it_would_outgrow_a_message() {
        let budget = crate::wire::message_budget();
        let sink: Arc<dyn Sink> = Arc::new(Collector::default());
        // Items of about 2 KiB each, in one requested chunk of a thousand: 2 MiB in all.
        let words: Vec<u64> = (0..256).map(|i| u64::MAX - i).collect();
        let mut chunker = Chunker::new(&echo_words, sink, 1000);
        for index in 0..1000 {
            chunker.push(index, &words);
        }
        let requests = chunker.finish();
        assert!(requests.len() > 1, "one chunk of 2 MiB");
        let mut next = 0;
        for request in &requests {
            assert_eq!(request.first, next, "chunks follow each other");
            next += request.items.len();
            // Each ends before the item that would take it past the budget.
            assert!(request.items.wire_size() <= budget);
        }
        assert_eq!(next, 1000, "no item lost");
        // But not much before.
        let item = requests[0].items.wire_size() / requests[0].items.len();
        assert!(requests[0].items.wire_size() + item > budget);
    }
}
