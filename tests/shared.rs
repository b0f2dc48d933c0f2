//! The shared objects across real processes, under every start method and in pool tasks: a
//! counter that loses no increment, a queue that delivers every item once, a lock whose holder
//! is killed, round trips of Event, Pipe and Array, and nothing left behind in /dev/shm or the
//! temp dir.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use process_runtime::prelude::*;
use process_runtime::{LockError, ProcessError, SpawnError, TaskError, pipe_with_capacity};

use common::{DEADLINE, pool, spawn, wait_until};

per_start_method!(
    four_processes_add_forty_thousand,
    a_queue_delivers_thirty_thousand_items_exactly_once,
    a_killed_lock_holder_deadlocks_nobody_and_the_next_locker_is_told,
    a_producer_killed_mid_put_leaves_the_queue_whole,
    an_event_crosses_processes_both_ways,
    a_pipe_carries_messages_both_ways,
    an_array_is_read_and_written_by_a_child,
    a_semaphore_is_released_by_another_process,
    shared_objects_work_in_pool_tasks,
    nothing_is_left_in_dev_shm_or_the_temp_dir,
    a_shared_object_made_in_a_child_is_returned,
    a_map_over_hundreds_of_shared_objects_goes_in_messages_that_fit,
    too_many_shared_objects_in_one_value_is_an_error_that_says_so,
    children_started_from_many_threads_each_get_their_own_shared_object,
);

#[process_task]
fn increment(counter: Value<u64>, times: u32) {
    for _ in 0..times {
        let mut n = counter.lock().expect("nobody dies holding it");
        *n += 1;
    }
}

fn four_processes_add_forty_thousand(method: StartMethod) {
    let counter = Value::new(0_u64).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| spawn(method, increment, (counter.clone(), 10_000)))
        .collect();
    for child in children {
        child.join().unwrap();
    }
    assert_eq!(counter.get(), 40_000);
}

#[process_task]
fn produce(queue: Queue<Option<u32>>, first: u32, count: u32) {
    for item in first..first + count {
        queue.put(Some(item)).expect("put");
    }
}

#[process_task]
fn consume(queue: Queue<Option<u32>>) -> Vec<u32> {
    let mut got = Vec::new();
    while let Some(item) = queue.get().expect("get") {
        got.push(item);
    }
    got
}

fn a_queue_delivers_thirty_thousand_items_exactly_once(method: StartMethod) {
    // Bounded, so that producers also wait for room, not only consumers for items.
    let queue = Queue::<Option<u32>>::bounded(100).unwrap();
    let consumers: Vec<_> = (0..3)
        .map(|_| spawn(method, consume, queue.clone()))
        .collect();
    let producers: Vec<_> = (0..3)
        .map(|i| spawn(method, produce, (queue.clone(), i * 10_000, 10_000)))
        .collect();
    for producer in producers {
        producer.join().unwrap();
    }
    for _ in &consumers {
        queue.put(None).unwrap(); // one "done" for each consumer
    }
    let mut all: Vec<u32> = consumers
        .into_iter()
        .flat_map(|consumer| consumer.join().unwrap())
        .collect();
    assert_eq!(all.len(), 30_000, "some items were lost or delivered twice");
    all.sort_unstable();
    assert!(all.iter().copied().eq(0..30_000), "not every item, once");
    assert!(queue.is_empty());
}

#[process_task]
fn hold_until_killed(lock: Lock, value: Value<u64>, holding: Event) {
    let _lock = lock.acquire().expect("the lock is free");
    let mut value = value.lock().expect("the value is free");
    *value = 7;
    holding.set();
    loop {
        std::thread::park();
    }
}

/// Starts a child that takes a lock and a value's lock and holds them until it is killed, and
/// waits until it holds them.
fn start_a_lock_holder(method: StartMethod) -> (Lock, Value<u64>, Process<()>) {
    let (lock, value, holding) = (
        Lock::new().unwrap(),
        Value::new(0_u64).unwrap(),
        Event::new().unwrap(),
    );
    let holder = spawn(
        method,
        hold_until_killed,
        (lock.clone(), value.clone(), holding.clone()),
    );
    assert!(
        holding.wait_timeout(DEADLINE),
        "the holder never took the lock"
    );
    (lock, value, holder)
}

/// Waits for the lock and says whether it was told that its previous holder died.
#[process_task]
fn acquire_and_tell(lock: Lock) -> bool {
    match lock.acquire() {
        Ok(_guard) => false,
        Err(LockError::OwnerDied(_guard)) => true,
        Err(error) => panic!("could not acquire: {error}"),
    }
}

fn a_killed_lock_holder_deadlocks_nobody_and_the_next_locker_is_told(method: StartMethod) {
    let (lock, value, holder) = start_a_lock_holder(method);
    // Contenders that wait for the lock while its holder is alive, and after it dies.
    let contenders: Vec<_> = (0..3)
        .map(|_| spawn(method, acquire_and_tell, lock.clone()))
        .collect();
    holder.kill().unwrap();
    let error = holder.join().unwrap_err();
    assert!(
        matches!(error, ProcessError::Killed { signal: 9 }),
        "{error:?}"
    );

    let told: Vec<bool> = contenders
        .into_iter()
        .map(|contender| contender.join().unwrap())
        .collect();
    assert_eq!(
        told.iter().filter(|&&told| told).count(),
        1,
        "exactly the first locker after the death is told: {told:?}"
    );
    assert!(lock.acquire().is_ok(), "the lock works as before");

    // The value's lock too: `get` goes on, the next `lock()` is told.
    assert_eq!(value.get(), 7);
    let guard = value.lock().unwrap_err();
    assert!(guard.is_owner_died());
    assert_eq!(*guard.recover().unwrap(), 7);
    assert!(value.lock().is_ok());
}

/// Puts items of 40 KB, each all one byte, forever.
#[process_task]
fn put_forever(queue: Queue<Vec<u8>>) {
    for i in 0_u32.. {
        queue.put(vec![i as u8; 40_000]).expect("put");
    }
}

fn a_producer_killed_mid_put_leaves_the_queue_whole(method: StartMethod) {
    // A small ring, so that the producer spends its time copying into it or waiting for room.
    let queue = Queue::<Vec<u8>>::with_capacity(100_000).unwrap();
    let producer = spawn(method, put_forever, queue.clone());
    let check = |item: Vec<u8>, expected: u8| {
        assert_eq!(item.len(), 40_000);
        assert!(item.iter().all(|&b| b == expected), "a torn item");
    };
    for i in 0..50 {
        check(queue.get_timeout(DEADLINE).unwrap(), i);
    }
    // Killed while it runs: in the middle of a copy, or waiting.
    producer.kill().unwrap();
    assert!(producer.join().is_err());
    // What it had committed is whole; what it had not is not there.
    let mut next = 50_u8;
    while let Some(item) = queue.try_get().unwrap() {
        check(item, next);
        next = next.wrapping_add(1);
    }
    queue.put(vec![1; 40_000]).unwrap();
    queue.put(vec![2; 40_000]).unwrap();
    check(queue.get().unwrap(), 1);
    check(queue.get().unwrap(), 2);
}

#[process_task]
fn answer_when_told(ready: Event, go: Event, done: Event) -> bool {
    ready.set();
    go.wait();
    let was_set = go.is_set();
    done.set();
    was_set
}

fn an_event_crosses_processes_both_ways(method: StartMethod) {
    let (ready, go, done) = (
        Event::new().unwrap(),
        Event::new().unwrap(),
        Event::new().unwrap(),
    );
    let child = spawn(
        method,
        answer_when_told,
        (ready.clone(), go.clone(), done.clone()),
    );
    assert!(ready.wait_timeout(DEADLINE));
    assert!(!done.is_set(), "the child waits for go");
    assert!(!go.wait_timeout(Duration::from_millis(10)));
    go.set();
    assert!(done.wait_timeout(DEADLINE));
    assert!(child.join().unwrap());
    go.clear();
    assert!(!go.is_set());
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
enum Message {
    Text(String),
    Bytes(Vec<u8>),
    Done,
}

/// Sends back each message, reversed, until `Done`; returns how many it echoed.
#[process_task]
fn echo_reversed(conn: Connection<Message>) -> usize {
    let mut echoed = 0;
    loop {
        let reply = match conn.recv().expect("recv") {
            Message::Text(text) => Message::Text(text.chars().rev().collect()),
            Message::Bytes(mut bytes) => {
                bytes.reverse();
                Message::Bytes(bytes)
            }
            Message::Done => return echoed,
        };
        conn.send(reply).expect("send");
        echoed += 1;
    }
}

fn a_pipe_carries_messages_both_ways(method: StartMethod) {
    let (mine, theirs) = pipe_with_capacity::<Message>(64 * 1024).unwrap();
    let child = spawn(method, echo_reversed, theirs);
    mine.send(Message::Text("你好, cwz".into())).unwrap();
    assert_eq!(
        mine.recv_timeout(DEADLINE).unwrap(),
        Message::Text("zwc ,好你".into())
    );
    // Messages of 40 KB in a ring of 64 KiB: each one wraps around its end.
    for round in 0..20_u8 {
        let bytes: Vec<u8> = (0..40_000).map(|i| (i % 251) as u8 ^ round).collect();
        mine.send(Message::Bytes(bytes.clone())).unwrap();
        let mut expected = bytes;
        expected.reverse();
        assert_eq!(
            mine.recv_timeout(DEADLINE).unwrap(),
            Message::Bytes(expected)
        );
    }
    mine.send(Message::Done).unwrap();
    assert_eq!(child.join().unwrap(), 21);
    assert_eq!(mine.try_recv().unwrap(), None);
}

#[process_task]
fn square_and_sum(numbers: Array<i64>) -> i64 {
    let sum = numbers.to_vec().iter().sum();
    numbers.update(|numbers| numbers.iter_mut().for_each(|n| *n *= *n));
    numbers.set(0, -1);
    sum
}

fn an_array_is_read_and_written_by_a_child(method: StartMethod) {
    let numbers = Array::from_slice(&[0_i64, 1, 2, 3, 4]).unwrap();
    numbers.set(0, 10);
    let sum = spawn(method, square_and_sum, numbers.clone())
        .join()
        .unwrap();
    assert_eq!(sum, 20, "the child saw the parent's write");
    assert_eq!(numbers.to_vec(), [-1, 1, 4, 9, 16]);
    assert_eq!(numbers.get(4), 16);
}

#[process_task]
fn release_twice(semaphore: Semaphore) {
    semaphore.release();
    semaphore.release();
}

fn a_semaphore_is_released_by_another_process(method: StartMethod) {
    let semaphore = Semaphore::new(0).unwrap();
    assert!(!semaphore.try_acquire());
    let child = spawn(method, release_twice, semaphore.clone());
    assert!(semaphore.acquire_timeout(DEADLINE));
    assert!(semaphore.acquire_timeout(DEADLINE));
    child.join().unwrap();
    assert_eq!(semaphore.value(), 0);
}

#[process_task]
fn add_to(counter: Value<u64>, amount: u64) -> u64 {
    counter.update(|n| {
        *n += amount;
        *n
    })
}

#[process_task]
fn report_through(queue: Queue<u32>, lock: Lock, item: u32) {
    let _guard = lock.acquire().expect("lock");
    queue.put(item).expect("put");
}

fn shared_objects_work_in_pool_tasks(method: StartMethod) {
    let pool = pool(method, 2);
    let counter = Value::new(0_u64).unwrap();
    assert_eq!(pool.apply(add_to, (counter.clone(), 5)).unwrap(), 5);
    let inputs: Vec<_> = (1..=100).map(|i| (counter.clone(), i)).collect();
    pool.starmap(add_to, inputs).unwrap();
    assert_eq!(counter.get(), 5 + 5050);

    let (queue, lock) = (Queue::new().unwrap(), Lock::new().unwrap());
    let pending: Vec<_> = (0..10)
        .map(|i| {
            pool.apply_async(report_through, (queue.clone(), lock.clone(), i))
                .unwrap()
        })
        .collect();
    for result in pending {
        result.get().unwrap();
    }
    let got: BTreeSet<u32> = (0..10)
        .map(|_| queue.get_timeout(DEADLINE).unwrap())
        .collect();
    assert_eq!(got, (0..10).collect());
    pool.close();
    pool.join().unwrap();
}

/// Makes one of every kind of object in a child, uses it there and sends some to a grandchild.
#[process_task]
fn make_everything(method: StartMethod) -> u64 {
    let value = Value::new(1_u64).unwrap();
    let array = Array::<u8>::new(100).unwrap();
    let queue = Queue::<String>::new().unwrap();
    let (a, b) = pipe::<u8>().unwrap();
    let (lock, rlock) = (Lock::new().unwrap(), RLock::new().unwrap());
    let (event, semaphore) = (Event::new().unwrap(), Semaphore::new(1).unwrap());
    queue.put("x".into()).unwrap();
    a.send(1).unwrap();
    let _held = rlock.acquire().unwrap();
    event.set();
    semaphore.acquire();
    array.set(3, 3);
    let grandchild = spawn(method, increment, (value.clone(), 2));
    grandchild.join().unwrap();
    let _ = lock.acquire().unwrap();
    value.get() + u64::from(b.recv().unwrap()) + u64::from(array.get(3))
}

fn listing(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Runs [`leave_nothing_behind`] in a new process of this test binary whose temp dir
/// (`TMPDIR`) is a directory of its own, so that what other programs do in /tmp meanwhile does
/// not count, then checks that the directory is empty and /dev/shm has nothing new.
fn nothing_is_left_in_dev_shm_or_the_temp_dir(method: StartMethod) {
    let shm = Path::new("/dev/shm");
    let shm_before = listing(shm);
    let private = std::env::temp_dir().join(format!(
        "process-tasks-shared-{}-{method:?}",
        std::process::id()
    ));
    std::fs::create_dir_all(&private).unwrap();

    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "leave_nothing_behind",
            "--ignored",
            "--nocapture",
        ])
        .env("TMPDIR", &private)
        .env(WORKLOAD, format!("{method:?}"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the workload failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("1 passed"),
        "the workload did not run: {}",
        String::from_utf8_lossy(&output.stdout)
    );

    let mut left = BTreeSet::new();
    let empty = wait_until(|| {
        left = listing(&private);
        left.is_empty()
    });
    let _ = std::fs::remove_dir_all(&private);
    assert!(empty, "left behind in the temp dir: {left:?}");
    // Other programs may make entries in /dev/shm meanwhile; every new one must go again.
    let gone = wait_until(|| {
        left = listing(shm).difference(&shm_before).cloned().collect();
        left.is_empty()
    });
    assert!(gone, "left behind in /dev/shm: {left:?}");
}

/// Names the start method of [`leave_nothing_behind`]; without it, that test does nothing.
const WORKLOAD: &str = "PROCESS_TASKS_SHARED_WORKLOAD";

/// Makes every kind of shared object in children, and kills a child that holds a lock; returns
/// once every child is reaped. Run by [`nothing_is_left_in_dev_shm_or_the_temp_dir`].
#[test]
#[ignore = "run by nothing_is_left_in_dev_shm_or_the_temp_dir, in a process of its own"]
fn leave_nothing_behind() {
    let method = match std::env::var(WORKLOAD).as_deref() {
        Ok("Fork") => StartMethod::Fork,
        Ok("Spawn") => StartMethod::Spawn,
        Ok("ForkServer") => StartMethod::ForkServer,
        _ => return,
    };
    let children: Vec<_> = (0..3)
        .map(|_| spawn(method, make_everything, method))
        .collect();
    for child in children {
        assert_eq!(child.join().unwrap(), 1 + 2 + 1 + 3);
    }
    // A pool, whose workers receive objects with their tasks.
    let pool = pool(method, 2);
    let counter = Value::new(0_u64).unwrap();
    assert_eq!(pool.apply(add_to, (counter.clone(), 1)).unwrap(), 1);
    pool.close();
    pool.join().unwrap();
    // And a child killed while it holds a lock.
    let (lock, _value, holder) = start_a_lock_holder(method);
    holder.kill().unwrap();
    // `join` returns once the child is reaped.
    assert!(holder.join().is_err());
    assert!(lock.acquire().unwrap_err().is_owner_died());
}

#[process_task]
fn make_counter(start: u64) -> Value<u64> {
    Value::new(start).expect("a shared value")
}

fn a_shared_object_made_in_a_child_is_returned(method: StartMethod) {
    // The child has ended; its segment lives on in the parent, which received it beside the
    // report.
    let counter = spawn(method, make_counter, 41).join().unwrap();
    counter.set(counter.get() + 1);
    assert_eq!(counter.get(), 42);
    // And it can go on to another child.
    spawn(method, increment, (counter.clone(), 8))
        .join()
        .unwrap();
    assert_eq!(counter.get(), 50);
}

#[process_task]
fn read_value(value: Value<u64>) -> u64 {
    value.get()
}

#[process_task]
fn new_values(count: u64) -> Vec<Value<u64>> {
    (0..count)
        .map(|i| Value::new(i).expect("a shared value"))
        .collect()
}

#[process_task]
fn sum_values(values: Vec<Value<u64>>) -> u64 {
    values.iter().map(Value::get).sum()
}

fn a_map_over_hundreds_of_shared_objects_goes_in_messages_that_fit(method: StartMethod) {
    // Each shared object is a file descriptor beside the message, and ipc-channel passes at
    // most 64 per message: chunks, batches and a worker's reports are cut to fit, whatever the
    // chunk size.
    let pool = Pool::builder()
        .processes(2)
        .chunksize(100)
        .start_method(method)
        .build()
        .unwrap();
    let values: Vec<Value<u64>> = (0..300).map(|i| Value::new(i).unwrap()).collect();
    let read = pool.map(read_value, values.iter().cloned()).unwrap();
    assert_eq!(read, (0..300).collect::<Vec<u64>>());
    // And back: every result holds one.
    let made = pool.map(new_values, (0..200).map(|_| 1)).unwrap();
    assert_eq!(made.len(), 200);
    assert!(made.iter().all(|one| one.len() == 1 && one[0].get() == 0));
}

fn too_many_shared_objects_in_one_value_is_an_error_that_says_so(method: StartMethod) {
    let many: Vec<Value<u64>> = (0..40).map(|i| Value::new(i).unwrap()).collect();
    let says_so = |reason: &str| reason.contains("at most 30");
    // As arguments: refused before anything is sent, except to a forked child, which inherits
    // them without a message.
    let spawned = Process::builder(sum_values)
        .start_method(method)
        .spawn(many.clone());
    match (method, spawned) {
        (StartMethod::Fork, Ok(child)) => assert_eq!(child.join().unwrap(), (0..40).sum()),
        (_, Err(SpawnError::Encode { source, .. })) => {
            assert!(says_so(&source.to_string()), "{source}")
        }
        (_, other) => panic!("{other:?}"),
    }
    let pool = pool(method, 2);
    match pool.apply(sum_values, many.clone()) {
        Err(TaskError::Encode(reason)) => assert!(says_so(&reason), "{reason}"),
        other => panic!("{other:?}"),
    }
    // As a return value: the task's failure.
    match spawn(method, new_values, 40).join() {
        Err(ProcessError::Failed(reason)) => assert!(says_so(&reason), "{reason}"),
        other => panic!("{other:?}"),
    }
    match pool.apply(new_values, 40) {
        Err(TaskError::Failed(reason)) => assert!(says_so(&reason), "{reason}"),
        other => panic!("{other:?}"),
    }
    // Up to the limit goes.
    assert_eq!(
        pool.apply(sum_values, many[..30].to_vec()).unwrap(),
        (0..30).sum()
    );
    assert_eq!(pool.apply(new_values, 30).unwrap().len(), 30);
}

fn children_started_from_many_threads_each_get_their_own_shared_object(method: StartMethod) {
    // Shared objects go back beside the report; with many children ending at once, each
    // parent thread must get its own child's, not a sibling's.
    let threads: Vec<_> = (0..4u64)
        .map(|thread| {
            std::thread::spawn(move || {
                for i in 0..10 {
                    let start = thread * 100 + i;
                    let counter = spawn(method, make_counter, start).join().unwrap();
                    assert_eq!(counter.get(), start);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

#[test]
fn forked_children_returning_shared_objects_can_be_joined_in_any_order() {
    // A forked child sends its shared objects ahead of its report, to a channel its parent reads
    // only as it joins. With hundreds done and not yet joined, that channel fills up and the last
    // children wait to send: joining one of them first must still end.
    let children: Vec<_> = (0..280)
        .map(|i| spawn(StartMethod::Fork, make_counter, i))
        .collect();
    let deadline = Instant::now() + DEADLINE;
    for (i, mut child) in children.into_iter().enumerate().rev() {
        let left = deadline.saturating_duration_since(Instant::now());
        match child.join_timeout(left) {
            Ok(Some(counter)) => assert_eq!(counter.get(), i as u64),
            other => panic!("child {i}: {other:?}"),
        }
    }
}

/// Starts `count` forked children that each return a shared object, joins none of them, and
/// ends with their handles still held: its exit waits for them.
#[process_task]
fn leave_counters_unjoined(count: u64) -> usize {
    let children: Vec<_> = (0..count)
        .map(|i| spawn(StartMethod::Fork, make_counter, i))
        .collect();
    let started = children.len();
    std::mem::forget(children);
    started
}

#[test]
fn a_process_ending_with_hundreds_of_unjoined_forked_children_returning_shared_objects_ends() {
    // Those children send their shared objects to their parent's inbox, which holds a few
    // hundred messages. Their parent, ending without joining them, waits for them to end: it must
    // read the inbox meanwhile, or the last of them wait to send for ever, and it for them.
    let mut parent = spawn(StartMethod::Fork, leave_counters_unjoined, 400);
    match parent.join_timeout(DEADLINE) {
        Ok(Some(count)) => assert_eq!(count, 400),
        other => panic!("the parent did not end: {other:?}"),
    }
}

/// How [`poll_counters_until_they_end`] watches its children.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
enum Polling {
    IsAlive,
    ActiveChildren,
    /// `poll(2)` on their sentinels, which runs no code of the runtime's.
    Sentinels,
}

/// Starts `count` forked children that each return a shared object, then waits for all of them
/// to end as `polling` says, joining none; returns how many ended before the deadline.
#[process_task]
fn poll_counters_until_they_end(count: u64, polling: Polling) -> usize {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let children: Vec<_> = (0..count)
        .map(|i| spawn(StartMethod::Fork, make_counter, i))
        .collect();
    let running = || match polling {
        Polling::IsAlive => children.iter().filter(|child| child.is_alive()).count(),
        Polling::ActiveChildren => process_runtime::active_children().len(),
        Polling::Sentinels => {
            let mut fds: Vec<_> = children
                .iter()
                .map(|child| PollFd::new(child.sentinel(), PollFlags::POLLIN))
                .collect();
            poll(&mut fds, PollTimeout::from(10u16)).expect("poll the sentinels");
            fds.iter()
                .filter(|fd| fd.revents().is_none_or(|revents| revents.is_empty()))
                .count()
        }
    };
    wait_until(|| running() == 0);
    children.iter().filter(|child| !child.is_alive()).count()
}

#[test]
fn hundreds_of_forked_children_returning_shared_objects_end_while_their_parent_polls() {
    // As above, with a parent that polls instead of joining, in ways that may run no code of
    // the runtime's at all: the inbox is read whatever the parent does.
    for polling in [
        Polling::IsAlive,
        Polling::ActiveChildren,
        Polling::Sentinels,
    ] {
        let mut parent = spawn(
            StartMethod::Fork,
            poll_counters_until_they_end,
            (400, polling),
        );
        match parent.join_timeout(DEADLINE + DEADLINE) {
            Ok(Some(ended)) => assert_eq!(ended, 400, "polling with {polling:?}"),
            other => panic!("the parent polling with {polling:?} did not end: {other:?}"),
        }
    }
}
