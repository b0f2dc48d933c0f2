//! The process pool under every start method: the submission calls, ordering, failure
//! containment, worker replacement, closing and terminating.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use process_runtime::prelude::*;
use process_runtime::{AsyncResult, PoolError, TaskError};
use serde::{Deserialize, Serialize, Serializer};

use common::{pool, wait_until};

per_start_method!(
    apply_and_apply_async_return_values,
    map_keeps_the_order_of_ten_thousand_items,
    a_chunk_larger_than_a_message_keeps_every_item,
    imap_unordered_yields_the_same_multiset,
    starmap_takes_tuples,
    empty_input_gives_empty_results,
    a_panic_fails_its_task_alone,
    a_worker_killing_itself_fails_exactly_that_item,
    each_kind_of_worker_death_is_named,
    get_timeout_returns_not_ready_and_the_task_completes,
    max_tasks_per_child_replaces_workers,
    terminate_with_ten_thousand_pending_returns_promptly,
    dropping_the_pool_finishes_submitted_work,
    task_timeout_kills_only_the_slow_task,
    initializer_runs_once_in_each_worker,
    a_failing_initializer_fails_tasks_instead_of_respawning,
    workers_are_named_pool_worker_n,
    imap_streams_before_the_input_ends,
    a_panicking_input_fails_that_item,
    an_argument_that_does_not_encode_fails_that_item,
    close_refuses_work_and_join_needs_close,
    large_byte_strings_arrive_whole_however_long_results_wait,
    a_worker_dying_on_a_large_item_fails_only_that_item,
    a_map_not_ready_keeps_what_it_has_for_the_next_get,
    a_map_fails_as_soon_as_its_first_failure_is_known,
    a_result_whose_deserialize_panics_fails_the_map_not_the_pool,
    shared_objects_in_some_results_come_back_to_their_items,
    an_imap_of_a_pool_closed_meanwhile_fails_each_item,
    workers_that_keep_dying_at_start_break_the_pool_saying_so,
);

/// The indexes of the outcomes that are failures: a test that expects one item to fail checks
/// that it did, not only that no other did.
fn failed_indexes<T>(outcomes: &[Result<T, TaskError>]) -> Vec<usize> {
    outcomes
        .iter()
        .enumerate()
        .filter_map(|(index, outcome)| outcome.is_err().then_some(index))
        .collect()
}

#[process_task]
fn double(x: u64) -> u64 {
    x * 2
}

#[process_task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[process_task]
fn pid_of_worker() -> u32 {
    std::process::id()
}

#[process_task]
fn sleep_ms(millis: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(millis));
    millis
}

fn apply_and_apply_async_return_values(method: StartMethod) {
    let pool = pool(method, 2);
    assert_eq!(pool.apply(double, 21).unwrap(), 42);
    let pending: Vec<_> = (0..10)
        .map(|i| pool.apply_async(double, i).unwrap())
        .collect();
    let values: Vec<u64> = pending.into_iter().map(|r| r.get().unwrap()).collect();
    assert_eq!(values, (0..10).map(|i| i * 2).collect::<Vec<_>>());

    let one = pool.apply_async(sleep_ms, 50).unwrap();
    one.wait();
    assert!(one.ready());
    assert_eq!(one.successful(), Some(true));
    assert_eq!(one.get().unwrap(), 50);

    let mapped = pool.map_async(double, vec![1, 2, 3]).unwrap();
    mapped.wait();
    assert!(mapped.ready());
    assert_eq!(mapped.get().unwrap(), [2, 4, 6]);
    pool.close();
    pool.join().unwrap();
}

fn map_keeps_the_order_of_ten_thousand_items(method: StartMethod) {
    let pool = pool(method, 2);
    let doubled = pool.map(double, 0..10_000).unwrap();
    assert_eq!(doubled, (0..10_000).map(|i| i * 2).collect::<Vec<u64>>());
    let ordered: Vec<u64> = pool
        .imap(double, 0..10_000)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ordered, doubled);
}

fn a_chunk_larger_than_a_message_keeps_every_item(method: StartMethod) {
    // One requested chunk of 300k items, megabytes encoded: the pool cuts it into units that
    // each travel in one message, and the workers send their reports in several.
    let pool = Pool::builder()
        .processes(2)
        .chunksize(1 << 30)
        .start_method(method)
        .build()
        .unwrap();
    let doubled = pool.map(double, 0..300_000).unwrap();
    assert_eq!(doubled.len(), 300_000);
    assert!(doubled.iter().zip(0..).all(|(&y, x)| y == 2 * x));
}

fn imap_unordered_yields_the_same_multiset(method: StartMethod) {
    let pool = pool(method, 3);
    let mut got: Vec<u64> = pool
        .imap_unordered(double, 0..2_000)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    got.sort_unstable();
    assert_eq!(got, (0..2_000).map(|i| i * 2).collect::<Vec<u64>>());
}

fn starmap_takes_tuples(method: StartMethod) {
    let pool = pool(method, 2);
    assert_eq!(
        pool.starmap(add, vec![(1, 2), (3, 4), (5, 6)]).unwrap(),
        [3, 7, 11]
    );
    assert_eq!(
        pool.map(add, (0..4).map(|i| (i, 10))).unwrap(),
        [10, 11, 12, 13]
    );
}

fn empty_input_gives_empty_results(method: StartMethod) {
    let pool = pool(method, 1);
    assert!(pool.map(double, Vec::new()).unwrap().is_empty());
    assert!(pool.starmap(add, Vec::new()).unwrap().is_empty());
    assert!(
        pool.map_async(double, 0..0)
            .unwrap()
            .get()
            .unwrap()
            .is_empty()
    );
    assert_eq!(pool.imap(double, 0..0).unwrap().count(), 0);
    assert_eq!(pool.imap_unordered(double, 0..0).unwrap().count(), 0);
}

#[process_task]
fn panic_on(x: u64, bad: u64) -> (u64, u32) {
    assert!(x != bad, "item {x} is bad");
    (x, std::process::id())
}

fn a_panic_fails_its_task_alone(method: StartMethod) {
    let pool = pool(method, 1);
    let outcomes: Vec<_> = pool
        .imap(panic_on, (0..20).map(|x| (x, 7)))
        .unwrap()
        .collect();
    assert_eq!(outcomes.len(), 20);
    assert_eq!(failed_indexes(&outcomes), [7]);
    for (x, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Ok((got, _)) => assert_eq!(*got, x as u64),
            Err(TaskError::Panicked(info)) => {
                assert_eq!(x, 7);
                assert_eq!(info.message(), "item 7 is bad");
                assert!(
                    info.location()
                        .is_some_and(|l| l.file().ends_with("tests/pool.rs"))
                );
            }
            Err(other) => panic!("item {x}: {other}"),
        }
    }
    // The one worker survived the panic: every successful item ran in the same process.
    let pids: HashSet<u32> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().ok())
        .map(|(_, pid)| *pid)
        .collect();
    assert_eq!(pids.len(), 1);
}

#[process_task]
fn kill_self_on(x: u64, bad: u64) -> u64 {
    if x == bad {
        // SAFETY-free: a plain kill(2) of this very process.
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL).unwrap();
    }
    x
}

fn a_worker_killing_itself_fails_exactly_that_item(method: StartMethod) {
    let pool = pool(method, 2);
    let outcomes: Vec<_> = pool
        .imap(kill_self_on, (0..1_000).map(|x| (x, 500)))
        .unwrap()
        .collect();
    assert_eq!(outcomes.len(), 1_000);
    assert_eq!(failed_indexes(&outcomes), [500]);
    for (x, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(got) => assert_eq!(got, x as u64),
            Err(TaskError::WorkerDied { status, .. }) => {
                assert_eq!(x, 500);
                assert_eq!(status, "was killed by signal 9 (SIGKILL)");
            }
            Err(other) => panic!("item {x}: {other}"),
        }
    }
    // With map, the same crash is the map's error; the pool goes on.
    let error = pool
        .map(kill_self_on, (0..100).map(|x| (x, 50)))
        .unwrap_err();
    assert!(matches!(error, TaskError::WorkerDied { .. }), "{error}");
    assert_eq!(pool.map(double, 0..100).unwrap().len(), 100);
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum Death {
    Segfault,
    Abort,
    Exit(i32),
}

#[process_task]
fn die(how: Death) {
    match how {
        Death::Segfault => {
            // A real invalid write, not raise(SIGSEGV): a forked worker inherits std's SIGSEGV
            // handler, which ignores a raised signal but not a fault.
            // SAFETY: none; this faults on purpose, and the worker dying is the point.
            unsafe { (0x10 as *mut u8).write_volatile(1) };
        }
        Death::Abort => std::process::abort(),
        Death::Exit(code) => std::process::exit(code),
    }
}

fn each_kind_of_worker_death_is_named(method: StartMethod) {
    let pool = pool(method, 2);
    let cases = [
        (Death::Segfault, "was killed by signal 11 (SIGSEGV)"),
        (Death::Abort, "was killed by signal 6 (SIGABRT)"),
        (Death::Exit(3), "exited with code 3"),
    ];
    for (how, expected) in cases {
        let neighbour = pool.apply_async(sleep_ms, 20).unwrap();
        match pool.apply(die, how) {
            Err(TaskError::WorkerDied { status, pid }) => {
                assert_eq!(status, expected);
                assert!(pid > 0);
            }
            other => panic!("{how:?}: {other:?}"),
        }
        assert_eq!(neighbour.get().unwrap(), 20);
    }
    assert_eq!(pool.apply(double, 4).unwrap(), 8);
}

fn get_timeout_returns_not_ready_and_the_task_completes(method: StartMethod) {
    let pool = pool(method, 1);
    let mut slow = pool.apply_async(sleep_ms, 500).unwrap();
    match slow.get_timeout(Duration::from_millis(50)) {
        Err(TaskError::NotReady { waited }) => assert_eq!(waited, Duration::from_millis(50)),
        other => panic!("{other:?}"),
    }
    assert!(!slow.ready());
    assert_eq!(slow.get_timeout(common::DEADLINE).unwrap(), 500);
    assert!(matches!(
        slow.get_timeout(Duration::ZERO),
        Err(TaskError::AlreadyTaken)
    ));
}

fn max_tasks_per_child_replaces_workers(method: StartMethod) {
    let pool = Pool::builder()
        .processes(2)
        .max_tasks_per_child(1)
        .start_method(method)
        .build()
        .unwrap();
    let pending: Vec<_> = (0..20)
        .map(|_| pool.apply_async(pid_of_worker, ()).unwrap())
        .collect();
    let pids: HashSet<u32> = pending.into_iter().map(|r| r.get().unwrap()).collect();
    assert_eq!(pids.len(), 20, "each task ran in a fresh worker");

    // With one item per chunk, 30 items at most 3 per worker need at least 10 workers; and no
    // worker runs more than 3.
    let pool = Pool::builder()
        .processes(2)
        .max_tasks_per_child(3)
        .chunksize(1)
        .start_method(method)
        .build()
        .unwrap();
    let pids: Vec<u32> = pool.map(pid_of_worker, vec![(); 30]).unwrap();
    assert_eq!(pids.len(), 30);
    let mut per_worker = std::collections::HashMap::new();
    for pid in &pids {
        *per_worker.entry(pid).or_insert(0) += 1;
    }
    assert!(per_worker.len() >= 10, "{per_worker:?}");
    assert!(per_worker.values().all(|&n| n <= 3), "{per_worker:?}");
}

fn terminate_with_ten_thousand_pending_returns_promptly(method: StartMethod) {
    let pool = pool(method, 2);
    let pending: Vec<_> = (0..10_000)
        .map(|_| pool.apply_async(sleep_ms, 1_000).unwrap())
        .collect();
    let started = Instant::now();
    pool.terminate();
    // Generous: the point is "not 10,000 seconds", not a benchmark.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "terminate took {:?}",
        started.elapsed()
    );
    for result in pending {
        assert_eq!(result.get().unwrap_err(), TaskError::Terminated);
    }
    assert!(matches!(
        pool.apply_async(double, 1),
        Err(PoolError::Terminated)
    ));
    pool.join().unwrap();
}

fn dropping_the_pool_finishes_submitted_work(method: StartMethod) {
    let pool = pool(method, 2);
    let pending: Vec<_> = (0..40)
        .map(|i| pool.apply_async(double, i).unwrap())
        .collect();
    let slow = pool.apply_async(sleep_ms, 300).unwrap();
    drop(pool);
    // Everything submitted was run, not dropped.
    assert!(slow.ready());
    for (i, result) in pending.into_iter().enumerate() {
        assert_eq!(result.get().unwrap(), 2 * i as u64);
    }
    assert_eq!(slow.get().unwrap(), 300);
}

fn task_timeout_kills_only_the_slow_task(method: StartMethod) {
    let limit = Duration::from_millis(300);
    let pool = Pool::builder()
        .processes(2)
        .task_timeout(limit)
        .start_method(method)
        .build()
        .unwrap();
    let slow = pool.apply_async(sleep_ms, 60_000).unwrap();
    let quick: Vec<_> = (0..20)
        .map(|i| pool.apply_async(double, i).unwrap())
        .collect();
    assert_eq!(slow.get().unwrap_err(), TaskError::Timeout { limit });
    for (i, result) in quick.into_iter().enumerate() {
        assert_eq!(result.get().unwrap(), 2 * i as u64);
    }
    assert_eq!(pool.apply(double, 5).unwrap(), 10);
}

static SEED: AtomicU64 = AtomicU64::new(0);

#[process_task]
fn set_seed(seed: u64) {
    SEED.fetch_add(seed, Ordering::SeqCst);
}

#[process_task]
fn read_seed() -> u64 {
    SEED.load(Ordering::SeqCst)
}

fn initializer_runs_once_in_each_worker(method: StartMethod) {
    let pool = Pool::builder()
        .processes(2)
        .initializer(set_seed, 42)
        .start_method(method)
        .build()
        .unwrap();
    // Run more tasks than workers: the initializer ran once per worker, never per task.
    assert!(
        pool.map(read_seed, vec![(); 50])
            .unwrap()
            .iter()
            .all(|&seed| seed == 42)
    );
    // The parent's value is untouched.
    assert_eq!(SEED.load(Ordering::SeqCst), 0);
}

#[process_task]
fn failing_initializer() {
    panic!("no database");
}

fn a_failing_initializer_fails_tasks_instead_of_respawning(method: StartMethod) {
    let pool = Pool::builder()
        .processes(2)
        .initializer(failing_initializer, ())
        .start_method(method)
        .build()
        .unwrap();
    match pool.apply(double, 1) {
        Err(TaskError::InitializerFailed(reason)) => {
            assert!(reason.contains("no database"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        pool.apply(double, 2),
        Err(TaskError::InitializerFailed(_))
    ));
}

#[process_task]
fn worker_name() -> String {
    current_process().name().to_owned()
}

fn workers_are_named_pool_worker_n(method: StartMethod) {
    let pool = pool(method, 2);
    let names: HashSet<String> = pool
        .map(worker_name, vec![(); 20])
        .unwrap()
        .into_iter()
        .collect();
    assert!(!names.is_empty());
    for name in names {
        let number = name
            .strip_prefix("PoolWorker-")
            .unwrap_or_else(|| panic!("{name}"));
        assert!(number.parse::<u32>().is_ok(), "{name}");
    }
    let pids = pool.worker_pids();
    assert_eq!(pids.len(), 2);
}

fn imap_streams_before_the_input_ends(method: StartMethod) {
    let pool = pool(method, 2);
    // An endless input: imap must read it lazily, with bounded work in flight.
    let mut results = pool.imap(double, 0..).unwrap();
    for i in 0..5_000 {
        assert_eq!(results.next().unwrap().unwrap(), 2 * i);
    }
}

fn a_panicking_input_fails_that_item(method: StartMethod) {
    let pool = pool(method, 2);
    let input = || {
        (0..10).map(|i| {
            if i == 5 {
                panic!("input {i} cannot be produced")
            } else {
                i
            }
        })
    };
    let outcomes: Vec<_> = pool.imap(double, input()).unwrap().collect();
    assert_eq!(outcomes.len(), 6);
    for (i, outcome) in outcomes.iter().take(5).enumerate() {
        assert_eq!(*outcome.as_ref().unwrap(), 2 * i as u64);
    }
    assert_eq!(
        outcomes[5],
        Err(TaskError::Input("input 5 cannot be produced".into()))
    );
    assert_eq!(
        pool.map(double, input()).unwrap_err(),
        TaskError::Input("input 5 cannot be produced".into())
    );
    // The pool is fine.
    assert_eq!(pool.apply(double, 1).unwrap(), 2);
}

/// A value whose serialization fails for one input.
#[derive(Debug, Deserialize)]
struct Picky(u64);

impl Serialize for Picky {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 == 3 {
            return Err(serde::ser::Error::custom("three is not allowed"));
        }
        serializer.serialize_u64(self.0)
    }
}

#[process_task]
fn unpick(value: Picky) -> u64 {
    value.0
}

fn an_argument_that_does_not_encode_fails_that_item(method: StartMethod) {
    let pool = pool(method, 2);
    let outcomes: Vec<_> = pool.imap(unpick, (0..6).map(Picky)).unwrap().collect();
    assert_eq!(outcomes.len(), 6);
    assert_eq!(failed_indexes(&outcomes), [3]);
    for (i, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(value) => assert_eq!(value, i as u64),
            Err(TaskError::Encode(reason)) => {
                assert_eq!(i, 3);
                assert!(reason.contains("three is not allowed"), "{reason}");
            }
            Err(other) => panic!("{other}"),
        }
    }
    assert!(matches!(
        pool.apply(unpick, Picky(3)),
        Err(TaskError::Encode(_))
    ));
}

fn close_refuses_work_and_join_needs_close(method: StartMethod) {
    let pool = pool(method, 1);
    assert_eq!(pool.join().unwrap_err(), PoolError::StillRunning);
    let pending = pool.apply_async(sleep_ms, 100).unwrap();
    pool.close();
    assert!(matches!(
        pool.apply_async(double, 1),
        Err(PoolError::Closed)
    ));
    assert!(matches!(
        pool.apply(double, 1),
        Err(TaskError::Pool(PoolError::Closed))
    ));
    pool.join().unwrap();
    assert_eq!(pending.get().unwrap(), 100);
}

#[test]
fn a_pool_of_zero_processes_is_an_error() {
    assert_eq!(Pool::new(0).unwrap_err(), PoolError::NoProcesses);
    assert!(matches!(
        Pool::builder().processes(1).chunksize(0).build(),
        Err(PoolError::Invalid(_))
    ));
}

#[test]
fn default_size_is_the_available_parallelism() {
    let pool = Pool::builder().build().unwrap();
    assert_eq!(
        pool.processes(),
        std::thread::available_parallelism().unwrap().get()
    );
}

#[test]
fn workers_of_a_dropped_pool_are_gone() {
    let pool = Pool::new(2).unwrap();
    let pids = pool.worker_pids();
    drop(pool);
    assert!(wait_until(|| pids
        .iter()
        .all(|&pid| common::is_reaped(pid))));
}

#[process_task]
fn reverse_bytes(bytes: Vec<u8>) -> Vec<u8> {
    bytes.into_iter().rev().collect()
}

fn large_byte_strings_arrive_whole_however_long_results_wait(method: StartMethod) {
    // Large arguments and results travel through shared memory that each side uses again once
    // the other has read it. Here every result waits, unread, while the others are made.
    let pool = pool(method, 2);
    let inputs: Vec<Vec<u8>> = (0..8).map(|seed| common::pattern(seed, 2 << 20)).collect();
    let pending: Vec<_> = inputs
        .iter()
        .map(|bytes| pool.apply_async(reverse_bytes, bytes.clone()).unwrap())
        .collect();
    for result in &pending {
        result.wait();
    }
    for (result, input) in pending.into_iter().zip(&inputs).rev() {
        let back = result.get().unwrap();
        assert!(
            back.iter().rev().eq(input.iter()),
            "a result came back changed"
        );
    }
    let backs = pool.map(reverse_bytes, inputs.clone()).unwrap();
    for (back, input) in backs.iter().zip(&inputs) {
        assert!(
            back.iter().rev().eq(input.iter()),
            "a mapped result came back changed"
        );
    }
}

#[process_task]
fn reverse_or_die(bytes: Vec<u8>) -> Vec<u8> {
    if bytes[0] == 0xde && bytes[1] == 0xad {
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL).unwrap();
    }
    bytes.into_iter().rev().collect()
}

fn a_worker_dying_on_a_large_item_fails_only_that_item(method: StartMethod) {
    // The dead worker held other large items, which go to another worker: their bytes must
    // still be there, though the worker that died had read some of them.
    let pool = pool(method, 2);
    let inputs: Vec<Vec<u8>> = (0..12)
        .map(|seed| {
            let mut bytes = common::pattern(seed, (1 << 20) + 7);
            if seed == 5 {
                bytes[..2].copy_from_slice(&[0xde, 0xad]);
            }
            bytes
        })
        .collect();
    let pending: Vec<_> = inputs
        .iter()
        .map(|bytes| pool.apply_async(reverse_or_die, bytes.clone()).unwrap())
        .collect();
    let outcomes: Vec<_> = pending.into_iter().map(AsyncResult::get).collect();
    assert_eq!(failed_indexes(&outcomes), [5]);
    for (seed, (outcome, input)) in outcomes.into_iter().zip(&inputs).enumerate() {
        match outcome {
            Ok(back) => assert!(back.iter().rev().eq(input.iter()), "item {seed} changed"),
            Err(TaskError::WorkerDied { .. }) => assert_eq!(seed, 5),
            Err(other) => panic!("item {seed}: {other}"),
        }
    }
}

#[process_task]
fn double_after_gate(x: u64, gate: Event) -> u64 {
    if x == 7 {
        gate.wait();
    }
    x * 2
}

/// A pool of two that takes a map's items one at a time, and a gate for its tasks to wait on.
/// The tests open the gate with a [`common::SetOnDrop`] declared after the pool, so that it
/// drops first, however the test ends: dropping the pool waits for the tasks waiting on it.
fn pool_and_gate(method: StartMethod) -> (Pool, Event) {
    let pool = Pool::builder()
        .processes(2)
        .chunksize(1)
        .start_method(method)
        .build()
        .unwrap();
    (pool, Event::new().unwrap())
}

fn a_map_not_ready_keeps_what_it_has_for_the_next_get(method: StartMethod) {
    // Values are decoded as they arrive; a get that times out must not lose those.
    let (pool, gate) = pool_and_gate(method);
    let _open = common::SetOnDrop(gate.clone());
    let mut result = pool
        .map_async(double_after_gate, (0..20).map(|x| (x, gate.clone())))
        .unwrap();
    match result.get_timeout(Duration::from_millis(50)) {
        Err(TaskError::NotReady { .. }) => {}
        other => panic!("item 7 waits for the gate: {other:?}"),
    }
    gate.set();
    let values = result.get_timeout(common::DEADLINE).unwrap();
    assert_eq!(values, (0..20).map(|x| x * 2).collect::<Vec<u64>>());
}

#[process_task]
fn fail_on_three_wait_on_seven(x: u64, gate: Event) -> u64 {
    assert_ne!(x, 3, "item 3 fails");
    if x == 7 {
        gate.wait();
    }
    x * 2
}

fn a_map_fails_as_soon_as_its_first_failure_is_known(method: StartMethod) {
    // Item 3 fails at once and item 7 waits for the gate: `get` has its answer (the first
    // failure in input order) without item 7, while `ready` and `wait` are about every item.
    let (pool, gate) = pool_and_gate(method);
    let _open = common::SetOnDrop(gate.clone());
    let mut result = pool
        .map_async(
            fail_on_three_wait_on_seven,
            (0..20).map(|x| (x, gate.clone())),
        )
        .unwrap();
    match result.get_timeout(common::DEADLINE) {
        Err(TaskError::Panicked(info)) => {
            assert!(info.message().contains("item 3 fails"), "{info}")
        }
        other => panic!("item 3 fails first: {other:?}"),
    }
    assert!(!result.ready(), "item 7 is still waiting for the gate");
    gate.set();
    result.wait();
    assert!(result.ready());
    assert!(matches!(
        result.get_timeout(Duration::ZERO),
        Err(TaskError::AlreadyTaken)
    ));
}

/// A value whose deserialization panics for one value: user code that runs in the pool's own
/// thread when a map's results are decoded there.
#[derive(Debug, Serialize)]
struct Fragile(u64);

impl<'de> Deserialize<'de> for Fragile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = u64::deserialize(deserializer)?;
        assert_ne!(value, 13, "thirteen breaks it");
        Ok(Fragile(value))
    }
}

#[process_task]
fn fragile(x: u64) -> Fragile {
    Fragile(x)
}

fn a_result_whose_deserialize_panics_fails_the_map_not_the_pool(method: StartMethod) {
    let pool = pool(method, 2);
    match pool.map(fragile, 0..40) {
        Err(TaskError::Decode { reason, .. }) => {
            assert!(reason.contains("thirteen breaks it"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // The pool's thread lived through it.
    let values = pool.map(fragile, 20..30).unwrap();
    assert_eq!(values.iter().map(|f| f.0).sum::<u64>(), (20..30).sum());
    assert_eq!(pool.map(double, 0..100).unwrap().len(), 100);
}

/// Every seventh item returns a shared object, made in the worker, that holds its number.
#[process_task]
fn value_on_sevens(x: u64) -> (u64, Option<Value<u64>>) {
    (x, (x % 7 == 0).then(|| Value::new(x * 10).unwrap()))
}

fn shared_objects_in_some_results_come_back_to_their_items(method: StartMethod) {
    // The results of a run travel together, with the segments of the few items that have any
    // beside them: each must reach its own item, in a map (decoded as runs arrive), in imap
    // (item by item) and across the units of one batch.
    let pool = Pool::builder()
        .processes(2)
        .chunksize(16)
        .start_method(method)
        .build()
        .unwrap();
    let check = |x: u64, value: Option<Value<u64>>| match value {
        Some(value) => {
            assert_eq!(x % 7, 0, "item {x} got a value");
            assert_eq!(value.get(), x * 10, "item {x} got another item's value");
        }
        None => assert_ne!(x % 7, 0, "item {x} lost its value"),
    };
    let mapped = pool.map(value_on_sevens, 0..500).unwrap();
    assert_eq!(mapped.len(), 500);
    for (i, (x, value)) in mapped.into_iter().enumerate() {
        assert_eq!(x, i as u64);
        check(x, value);
    }
    let mut seen = 0;
    for (i, outcome) in pool.imap(value_on_sevens, 0..200).unwrap().enumerate() {
        let (x, value) = outcome.unwrap();
        assert_eq!(x, i as u64);
        check(x, value);
        seen += 1;
    }
    assert_eq!(seen, 200);
}

fn an_imap_of_a_pool_closed_meanwhile_fails_each_item(method: StartMethod) {
    // imap reads its input lazily: what it submits after the pool was closed is refused, and
    // each of those items gets the refusal as its outcome.
    let pool = Pool::builder()
        .processes(1)
        .chunksize(3)
        .start_method(method)
        .build()
        .unwrap();
    let results = pool.imap(double, 0..10).unwrap();
    pool.close();
    let outcomes: Vec<_> = results.collect();
    assert_eq!(
        outcomes,
        vec![Err(TaskError::Pool(PoolError::Closed)); 10],
        "every item fails with the refusal"
    );
    pool.join().unwrap();
}

#[process_task]
fn exit_at_start() {
    std::process::exit(3);
}

fn workers_that_keep_dying_at_start_break_the_pool_saying_so(method: StartMethod) {
    // An initializer that exits (rather than fails) kills every worker before its first task:
    // the pool gives up, and says the workers never ran a task.
    let pool = Pool::builder()
        .processes(1)
        .initializer(exit_at_start, ())
        .start_method(method)
        .build()
        .unwrap();
    match pool.apply(double, 1) {
        Err(TaskError::Pool(PoolError::Spawn(reason))) => {
            assert!(reason.contains("exited with code 3"), "{reason}");
            assert!(reason.contains("before it ran any task"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}
