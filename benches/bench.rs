//! The runtime measured beside its peers and the OS floor, in one run (issue 6).
//!
//! `cargo bench --bench bench` prints one Markdown table: spawn + join under each start method,
//! a pool one task at a time, a chunked map, a 64 MiB payload, idle worker memory and scaling,
//! each beside procspawn 1.0.2, the raw OS calls written here (`bench/raw.rs`) and, when
//! `BENCH_PYTHON` names the file `scripts/bench.py --tsv FILE` wrote, Python's multiprocessing.
//! `scripts/bench.sh` runs both.
//!
//! For profiling, a smaller run: `BENCH_ONLY` (or arguments after `--`) lists measurements to
//! run, matched by prefix (`spawn`, `spawn.forkserver`, `pool.ours`, `map`, `memory`,
//! `payload`, `scaling.spawn`, ...; see the `wants` calls) or, ending in `$`, exactly
//! (`spawn.fork$` without `spawn.forkserver`), and `BENCH_SCALE` multiplies every iteration and
//! task count.
//!
//! procspawn needs `procspawn::init()` first in `main`: its children re-execute this binary and
//! run `main` up to there. The runtime needs nothing: its re-executed children are taken over by
//! a constructor before `main`.

#[path = "bench/measure.rs"]
mod measure;
#[path = "bench/raw.rs"]
mod raw;
#[path = "bench/report.rs"]
mod report;
#[path = "bench/targets.rs"]
mod targets;

use std::collections::VecDeque;
use std::error::Error;
use std::hint::black_box;
use std::time::{Duration, Instant};

use process_runtime::prelude::*;

use measure::{Config, Variant, interleaved, median, median_of, pss_kib, settle};
use raw::{IdleChild, RawPool};
use report::{Peer, Python, Row, Unit, print_table};
use targets::print_targets;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

#[process_task]
fn double(x: u64) -> u64 {
    x * 2
}

#[process_task]
fn identity(bytes: Vec<u8>) -> Vec<u8> {
    bytes
}

#[process_task]
fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// One of our start methods, with its names in the measurement filters and in the table.
struct Method {
    method: StartMethod,
    title: &'static str,
    /// Filter and row key of its spawn + join measurement.
    spawn: (&'static str, &'static str),
    /// Filter and row key of its idle worker memory.
    memory: (&'static str, &'static str),
}

const METHODS: [Method; 3] = [
    Method {
        method: StartMethod::ForkServer,
        title: "ForkServer",
        spawn: ("spawn.forkserver", "spawn_forkserver"),
        memory: ("memory.forkserver", "pss_idle_forkserver"),
    },
    Method {
        method: StartMethod::Spawn,
        title: "Spawn",
        spawn: ("spawn.spawn", "spawn_spawn"),
        memory: ("memory.spawn", "pss_idle_spawn"),
    },
    Method {
        method: StartMethod::Fork,
        title: "Fork",
        spawn: ("spawn.fork", "spawn_fork"),
        memory: ("memory.fork", "pss_idle_fork"),
    },
];

/// The 64 MiB payload.
const PAYLOAD: usize = 64 << 20;

fn check(answer: u64, x: u64) -> Result<()> {
    if answer == x * 2 {
        Ok(())
    } else {
        Err(format!("got {answer} for {x}").into())
    }
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn main() -> Result<()> {
    procspawn::init();
    let config = Config::from_env();
    let python = Python::from_env()?;
    let machine = machine();
    let began = Instant::now();
    let mut rows = Vec::new();
    // Memory first, while this process is small (a forked child shares its pages); its rows are
    // printed after the payload's, in the order.
    let mut memory_rows = Vec::new();
    idle_memory(&config, &mut memory_rows)?;
    spawn_join(&config, &mut rows)?;
    pool_one_at_a_time(&config, &mut rows)?;
    pool_map(&config, &mut rows)?;
    payload(&config, &mut rows)?;
    rows.append(&mut memory_rows);
    scaling(&config, &mut rows)?;
    eprintln!("all measured in {:.1?}", began.elapsed());
    println!();
    println!("{machine}");
    println!();
    print_table(&rows, &python);
    println!();
    print_targets(&rows, &python);
    Ok(())
}

/// `nproc`, the CPU model, the kernel and the load.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| release.trim().to_owned())
        .unwrap_or_default();
    // Other work on the machine shows in every figure; say how much there was.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|loadavg| loadavg.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default();
    format!("Machine: {cpus} CPUs ({model}), Linux {kernel}; load average {load} before the run")
}

/// Spawn + join of a task returning a u64: ours under each start method, procspawn, and the raw
/// floors, taking turns.
///
/// A thousand calls each: with two hundred, the ratio of Fork to the floor moved between 1.0×
/// and 1.5× from one run to the next on the reference machine; with a thousand, between 1.2× and
/// 1.35×, for about five seconds more.
fn spawn_join(config: &Config, rows: &mut Vec<Row>) -> Result<()> {
    let (warmup, iterations) = (20, config.count(1000));
    let mut variants: Vec<Variant<'_>> = vec![
        (
            "spawn.floor.waitpid",
            Box::new(|_| Ok(raw::fork_waitpid()?)),
        ),
        (
            "spawn.floor.pipe",
            Box::new(|i| check(raw::fork_pipe_round_trip(i)?, i)),
        ),
        (
            "spawn.procspawn",
            Box::new(|i| check(procspawn::spawn(i, |x: u64| x * 2).join()?, i)),
        ),
    ];
    for Method { method, spawn, .. } in METHODS {
        variants.push((
            spawn.0,
            Box::new(move |i| {
                let child = Process::builder(double).start_method(method).spawn(i)?;
                check(child.join()?, i)
            }),
        ));
    }
    let medians = interleaved(config, warmup, iterations, variants)?;
    let figure = |name: &str| medians.get(name).copied().map(micros);
    let pipe_floor = figure("spawn.floor.pipe");
    for Method {
        title,
        spawn: (filter, key),
        ..
    } in METHODS
    {
        rows.push(
            Row::new(
                key,
                format!("spawn + join → u64, {title}"),
                Unit::Micros,
                figure(filter),
            )
            .procspawn(figure("spawn.procspawn"))
            .floor(pipe_floor, "fork + 8-byte pipe round trip"),
        );
    }
    rows.push(
        Row::new(
            "spawn_waitpid",
            "spawn + join, nothing sent back",
            Unit::Micros,
            None,
        )
        .floor(figure("spawn.floor.waitpid"), "fork + waitpid"),
    );
    Ok(())
}

/// Tasks per second of `tasks` × `apply_async(double, i)`, all submitted before the first result
/// is read, on a pool of ours: the median of `runs` runs on one pool. Each run's rate goes to
/// stderr, since they vary.
fn our_pool_rate(processes: usize, tasks: u64, runs: u64) -> Result<f64> {
    let pool = Pool::new(processes)?;
    let run = |tasks: u64| -> Result<Duration> {
        let began = Instant::now();
        let pending: Vec<_> = (0..tasks)
            .map(|i| pool.apply_async(double, i))
            .collect::<std::result::Result<_, _>>()?;
        for (i, pending) in (0..).zip(pending) {
            check(pending.get()?, i)?;
        }
        Ok(began.elapsed())
    };
    run(1000)?;
    let mut samples = Vec::new();
    for _ in 0..runs {
        let elapsed = run(tasks)?;
        eprint!("[{:.0}k/s] ", tasks as f64 / elapsed.as_secs_f64() / 1e3);
        samples.push(elapsed);
    }
    Ok(tasks as f64 / median(samples).as_secs_f64())
}

/// The same on procspawn's pool; at most `WINDOW` tasks in flight, since each holds two
/// channels (four descriptors) until it is joined.
fn procspawn_pool_rate(processes: usize, tasks: u64) -> Result<f64> {
    const WINDOW: usize = 1000;
    let pool = procspawn::Pool::new(processes)?;
    let run = |tasks: u64| -> Result<()> {
        let mut pending = VecDeque::with_capacity(WINDOW);
        for i in 0..tasks {
            if pending.len() == WINDOW {
                let (x, handle): (u64, procspawn::JoinHandle<u64>) =
                    pending.pop_front().expect("a full window");
                check(handle.join()?, x)?;
            }
            pending.push_back((i, pool.spawn(i, |x: u64| x * 2)));
        }
        for (x, handle) in pending {
            check(handle.join()?, x)?;
        }
        Ok(())
    };
    run(100)?;
    let began = Instant::now();
    run(tasks)?;
    let rate = tasks as f64 / began.elapsed().as_secs_f64();
    pool.shutdown();
    Ok(rate)
}

/// Tasks per second of the hand-rolled fork + pipes pool, median of `runs`.
fn raw_pool_rate(processes: usize, tasks: u64, chunk: u64, warmup: u64, runs: u64) -> Result<f64> {
    let mut pool = RawPool::start(processes, chunk as usize)?;
    pool.run(warmup, chunk)?;
    let mut samples = Vec::new();
    for _ in 0..runs {
        samples.push(pool.run(tasks, chunk)?);
    }
    Ok(tasks as f64 / median(samples).as_secs_f64())
}

/// A pool of 2, one tiny task per submission, many in flight.
fn pool_one_at_a_time(config: &Config, rows: &mut Vec<Row>) -> Result<()> {
    let tasks = config.count(100_000);
    let floor = config.run("pool.floor", || {
        raw_pool_rate(2, tasks, 1, tasks.min(1000), 3)
    })?;
    let procspawn = config.run("pool.procspawn", || {
        procspawn_pool_rate(2, config.count(20_000))
    })?;
    let ours = config.run("pool.ours", || our_pool_rate(2, tasks, 5))?;
    rows.push(
        Row::new(
            "pool_apply_async",
            "pool of 2, apply_async(x*2) one task at a time, 100k in flight",
            Unit::Rate,
            ours,
        )
        .procspawn(procspawn)
        .floor(floor, "fork + pipes, hand-rolled"),
    );
    Ok(())
}

/// A pool of 2 mapping 100k tiny tasks in chunks of Python's default size.
fn pool_map(config: &Config, rows: &mut Vec<Row>) -> Result<()> {
    let tasks = config.count(100_000);
    // More runs than elsewhere, and a first map of the full size that is not counted (it grows
    // the buffers that every later one reuses, which took a few runs of 100k to settle): as in
    // scripts/bench.py.
    let runs = config.count(9);
    // Python's default chunksize, which `Pool::map` uses too.
    let chunk = tasks.div_ceil(4 * 2);
    let floor = config.run("map.floor", || raw_pool_rate(2, tasks, chunk, tasks, runs))?;
    let ours = config.run("map.ours", || {
        let pool = Pool::new(2)?;
        pool.map(double, 0..tasks)?;
        let mut samples = Vec::new();
        for _ in 0..runs {
            let began = Instant::now();
            let doubled = pool.map(double, 0..tasks)?;
            samples.push(began.elapsed());
            for (x, answer) in (0..).zip(doubled) {
                check(answer, x)?;
            }
        }
        Ok(tasks as f64 / median(samples).as_secs_f64())
    })?;
    rows.push(
        Row::new(
            "pool_map",
            "pool of 2, map of 100k × (x*2), default chunksize",
            Unit::Rate,
            ours,
        )
        .procspawn(Peer::NotApplicable)
        .floor(floor, "fork + pipes, same chunks"),
    );
    rows.push(
        Row::new(
            "pool_map_executor",
            "the same map; Python: ProcessPoolExecutor, chunksize=1000",
            Unit::Rate,
            ours,
        )
        .procspawn(Peer::NotApplicable),
    );
    Ok(())
}

/// Pss of an idle pool worker of ours (per start method), of an idle procspawn child, and of a
/// forked child of this process.
fn idle_memory(config: &Config, rows: &mut Vec<Row>) -> Result<()> {
    let floor = config.run("memory.floor", || {
        let child = IdleChild::start()?;
        settle();
        Ok(pss_kib(child.pid())?)
    })?;
    let procspawn = config.run("memory.procspawn", || {
        let mut child = procspawn::spawn(600_000u64, |ms: u64| {
            std::thread::sleep(Duration::from_millis(ms));
        });
        let pid = child.pid().ok_or("procspawn child has no pid")?;
        settle();
        let pss = pss_kib(pid)?;
        child.kill()?;
        Ok(pss)
    })?;
    for Method {
        method,
        title,
        memory: (filter, key),
        ..
    } in METHODS
    {
        let ours = config.run(filter, || {
            let pool = Pool::builder().processes(1).start_method(method).build()?;
            check(pool.apply(double, 1)?, 1)?;
            settle();
            let pid = *pool.worker_pids().first().ok_or("the pool has no worker")?;
            Ok(pss_kib(pid)?)
        })?;
        rows.push(
            Row::new(
                key,
                format!("idle pool worker Pss, {title}"),
                Unit::Kib,
                ours,
            )
            .procspawn(procspawn)
            .floor(floor, "forked child of the bench"),
        );
    }
    Ok(())
}

/// A 64 MiB `Vec<u8>` to a running worker and back, beside a memcpy of the same buffer.
fn payload(config: &Config, rows: &mut Vec<Row>) -> Result<()> {
    if !config.wants_group("payload") {
        return Ok(());
    }
    let runs = config.count(5);
    let source: Vec<u8> = (0..PAYLOAD).map(|i| (i % 251) as u8).collect();
    // Both directions moved, per second of round trip.
    let each_way = |round_trip: Duration| 2.0 * PAYLOAD as f64 / round_trip.as_secs_f64() / 1e9;
    let memcpy = config.run("payload.memcpy", || {
        let mut target = vec![0u8; PAYLOAD];
        let one_way = median_of(2, runs * 4, |_| {
            target.copy_from_slice(black_box(&source));
            black_box(&mut target);
            Ok(())
        })?;
        Ok(PAYLOAD as f64 / one_way.as_secs_f64() / 1e9)
    })?;
    let round_trips = |send: &dyn Fn(Vec<u8>) -> Result<Vec<u8>>| -> Result<Duration> {
        let mut samples = Vec::new();
        for run in 0..=runs {
            let argument = source.clone();
            let began = Instant::now();
            let back = send(argument)?;
            if run > 0 {
                samples.push(began.elapsed());
            }
            if back != source {
                return Err("the payload came back changed".into());
            }
        }
        Ok(median(samples))
    };
    let procspawn = config.run("payload.procspawn", || {
        Ok(each_way(round_trips(&|bytes| {
            Ok(procspawn::spawn(bytes, |bytes: Vec<u8>| bytes).join()?)
        })?))
    })?;
    let ours = config.run("payload.ours", || {
        let pool = Pool::new(1)?;
        Ok(each_way(round_trips(&|bytes| {
            Ok(pool.apply(identity, bytes)?)
        })?))
    })?;
    rows.push(
        Row::new(
            "payload_64mib",
            "64 MiB Vec<u8> to a worker and back, GB/s each way (2 × 64 MiB / round trip)",
            Unit::GigabytesPerSecond,
            ours,
        )
        .procspawn(procspawn)
        .floor(memcpy, "memcpy of the buffer"),
    );
    Ok(())
}

/// One step of the scaling measurement: how many live children, its title, and the keys of its
/// spawn latency and memory rows.
type Step = (usize, &'static str, &'static str, &'static str);

/// Spawn latency and memory per child with 1, 100 and 500 live children; pool throughput with
/// 1, 2 and 4 workers.
fn scaling(config: &Config, rows: &mut Vec<Row>) -> Result<()> {
    let steps: [Step; 3] = [
        (1, "1 live child", "scaling_spawn_1", "scaling_pss_1"),
        (
            100,
            "100 live children",
            "scaling_spawn_100",
            "scaling_pss_100",
        ),
        (
            500,
            "500 live children",
            "scaling_spawn_500",
            "scaling_pss_500",
        ),
    ];
    if config.wants("scaling.spawn") {
        scaling_spawn(config, &steps, rows)?;
    }
    let tasks = config.count(50_000);
    for (processes, key) in [
        (1, "scaling_pool_1"),
        (2, "scaling_pool_2"),
        (4, "scaling_pool_4"),
    ] {
        let floor = config.run(&format!("scaling.pool.floor.{processes}"), || {
            raw_pool_rate(processes, tasks, 1, tasks.min(1000), 3)
        })?;
        let ours = config.run(&format!("scaling.pool.ours.{processes}"), || {
            our_pool_rate(processes, tasks, 5)
        })?;
        rows.push(
            Row::new(
                key,
                format!("pool of {processes}, apply_async one at a time, 50k in flight"),
                Unit::Rate,
                ours,
            )
            .floor(floor, "fork + pipes, hand-rolled"),
        );
    }
    Ok(())
}

/// How many turns [`scaling_spawn`] takes through its steps.
const SCALING_TURNS: u64 = 15;

/// Spawn + join of a tiny task (ForkServer) while 1, 100 and 500 daemon children sleep, and the
/// Pss per live child at each step.
///
/// The steps take turns: each turn grows the live children to 1, 100 and 500, timing a block of
/// spawns at each, then kills them down to 1 again. Measured one after the other, the steps met
/// different moments of a shared machine (the ratio of 500 children to 1 ranged from 0.6× to
/// 1.4× between runs); in turns, a slow moment falls on all of them alike. The Pss is read in
/// the first turn, after each step's children have settled, as before.
fn scaling_spawn(config: &Config, steps: &[Step], rows: &mut Vec<Row>) -> Result<()> {
    let (warmup, iterations) = (20, config.count(300));
    let per_turn = iterations.div_ceil(SCALING_TURNS);
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); steps.len()];
    let mut pss = vec![0.0; steps.len()];
    let mut live: Vec<Process<()>> = Vec::new();
    let mut i = 0;
    let mut spawn_join = || -> Result<Duration> {
        i += 1;
        let began = Instant::now();
        check(double.spawn(i)?.join()?, i)?;
        Ok(began.elapsed())
    };
    eprint!("scaling.spawn with 1, 100, 500 live children in turns ... ");
    let began = Instant::now();
    for _ in 0..warmup {
        spawn_join()?;
    }
    let mut turn = 0;
    while samples
        .iter()
        .any(|samples| (samples.len() as u64) < iterations)
    {
        for (step, &(children, ..)) in steps.iter().enumerate() {
            // Fewer than before only at the first step of a turn: the newest are killed.
            while live.len() > children {
                let mut child = live.pop().ok_or("no live child")?;
                child.kill()?;
                child.wait()?;
            }
            while live.len() < children {
                live.push(Process::builder(sleep_ms).daemon(true).spawn(600_000)?);
            }
            if turn == 0 {
                settle();
                for child in &live {
                    pss[step] += pss_kib(child.pid())?;
                }
                pss[step] /= children as f64;
            } else {
                // Long enough for the children just started to be asleep.
                std::thread::sleep(Duration::from_millis(20));
            }
            for _ in 0..3 {
                spawn_join()?;
            }
            let block = per_turn.min(iterations - samples[step].len() as u64);
            for _ in 0..block {
                samples[step].push(spawn_join()?);
            }
        }
        turn += 1;
    }
    eprintln!("{:.1?}", began.elapsed());
    for child in &live {
        child.kill()?;
    }
    for mut child in live {
        let _ = child.wait();
    }
    for ((&(_, live_children, latency_key, pss_key), samples), pss) in
        steps.iter().zip(samples).zip(pss)
    {
        rows.push(Row::new(
            latency_key,
            format!("spawn + join → u64, ForkServer, {live_children}"),
            Unit::Micros,
            Some(micros(median(samples))),
        ));
        rows.push(Row::new(
            pss_key,
            format!("Pss per child, {live_children}"),
            Unit::Kib,
            Some(pss),
        ));
    }
    Ok(())
}
