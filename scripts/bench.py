#!/usr/bin/env python3
"""The Python side of the benchmark: the workloads of `cargo bench --bench bench` in Python's
multiprocessing (standard library only), printed as the same rows.

    python3 scripts/bench.py               # print the table
    python3 scripts/bench.py --tsv FILE    # also write `key<TAB>value` lines for the Rust bench

`scripts/bench.sh` runs this, then the Rust bench with these figures in its Python column.
Figures: latencies in microseconds (median), rates in tasks per second, payload in GB/s each way
(2 x 64 MiB / round trip), memory in KiB of Pss.
"""

import argparse
import multiprocessing as mp
import os
import platform
import sys
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

PAYLOAD = 64 << 20

# The rows in the order of the Rust bench's table.
ROWS = [
    "spawn_forkserver",
    "spawn_spawn",
    "spawn_fork",
    "pool_apply_async",
    "pool_map",
    "pool_map_executor",
    "payload_64mib",
    "pss_idle_forkserver",
    "pss_idle_spawn",
    "pss_idle_fork",
]


def double(x):
    return x * 2


def identity(data):
    return data


def double_to(conn, x):
    conn.send(x * 2)
    conn.close()


def pss_kib(pid):
    """Pss of a process in KiB, from /proc/<pid>/smaps_rollup."""
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return float(line.split()[1])
    raise RuntimeError(f"no Pss line for pid {pid}")


def spawn_join(ctx, warmup, iterations):
    """Median microseconds of starting a Process that sends x*2 back on a pipe, and joining it."""
    samples = []
    for i in range(warmup + iterations):
        began = time.perf_counter()
        reader, writer = ctx.Pipe(duplex=False)
        child = ctx.Process(target=double_to, args=(writer, i))
        child.start()
        writer.close()
        answer = reader.recv()
        child.join()
        reader.close()
        elapsed = time.perf_counter() - began
        assert answer == 2 * i, answer
        if i >= warmup:
            samples.append(elapsed)
    return statistics.median(samples) * 1e6


def apply_async_rate(tasks):
    """Tasks per second of `tasks` x apply_async(double, i) on a Pool(2), all in flight."""
    with mp.Pool(2) as pool:
        [r.get() for r in [pool.apply_async(double, (i,)) for i in range(1000)]]
        began = time.perf_counter()
        pending = [pool.apply_async(double, (i,)) for i in range(tasks)]
        for i, result in enumerate(pending):
            assert result.get() == 2 * i
        return tasks / (time.perf_counter() - began)


def map_rate(tasks, runs):
    """Tasks per second of Pool(2).map over `tasks` items, default chunksize; median of runs,
    after one map of the same size (the first grows the buffers every later one reuses)."""
    with mp.Pool(2) as pool:
        pool.map(double, range(tasks))
        samples = []
        for _ in range(runs):
            began = time.perf_counter()
            doubled = pool.map(double, range(tasks))
            samples.append(time.perf_counter() - began)
            assert doubled[-1] == 2 * (tasks - 1)
        return tasks / statistics.median(samples)


def executor_rate(tasks, runs):
    """The same with ProcessPoolExecutor(2).map(..., chunksize=1000)."""
    with ProcessPoolExecutor(max_workers=2) as executor:
        list(executor.map(double, range(tasks), chunksize=1000))
        samples = []
        for _ in range(runs):
            began = time.perf_counter()
            doubled = list(executor.map(double, range(tasks), chunksize=1000))
            samples.append(time.perf_counter() - began)
            assert doubled[-1] == 2 * (tasks - 1)
        return tasks / statistics.median(samples)


def payload_rate(runs):
    """GB/s each way of 64 MiB of bytes to a Pool(1) worker and back (apply of identity)."""
    data = (bytes(range(251)) * (PAYLOAD // 251 + 1))[:PAYLOAD]
    with mp.Pool(1) as pool:
        samples = []
        for run in range(runs + 1):
            began = time.perf_counter()
            back = pool.apply(identity, (data,))
            elapsed = time.perf_counter() - began
            assert back == data
            if run > 0:
                samples.append(elapsed)
        return 2 * PAYLOAD / statistics.median(samples) / 1e9


def idle_worker_pss(method):
    """Pss in KiB of the idle worker of a Pool(1) started with `method`."""
    with mp.get_context(method).Pool(1) as pool:
        pid = pool.apply(os.getpid)
        time.sleep(0.3)
        return pss_kib(pid)


def count(base, scale):
    return max(1, round(base * scale))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tsv", help="also write key<TAB>value lines to this file")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every iteration and task count"
    )
    args = parser.parse_args()
    scale = args.scale

    figures = {}  # key -> (label, value, unit)

    def measure(key, label, unit, run):
        began = time.perf_counter()
        print(f"{key} ... ", end="", flush=True, file=sys.stderr)
        figures[key] = (label, run(), unit)
        print(f"{time.perf_counter() - began:.1f}s", file=sys.stderr)

    # Memory first, while this process is small: a forked worker shares its pages.
    for method in ["forkserver", "spawn", "fork"]:
        measure(
            f"pss_idle_{method}",
            f"idle Pool worker Pss, {method}",
            "KiB",
            lambda: idle_worker_pss(method),
        )
    for method, iterations in [("forkserver", 200), ("spawn", 50), ("fork", 200)]:
        ctx = mp.get_context(method)
        measure(
            f"spawn_{method}",
            f"spawn + join -> int, {method} (Process + Pipe)",
            "us",
            lambda: spawn_join(ctx, 5, count(iterations, scale)),
        )
    tasks = count(100_000, scale)
    measure(
        "pool_apply_async",
        "Pool(2), apply_async(x*2) one task at a time, 100k in flight",
        "tasks/s",
        lambda: apply_async_rate(tasks),
    )
    measure(
        "pool_map",
        "Pool(2).map of 100k x (x*2), default chunksize",
        "tasks/s",
        lambda: map_rate(tasks, count(9, scale)),
    )
    measure(
        "pool_map_executor",
        "ProcessPoolExecutor(2).map of 100k, chunksize=1000",
        "tasks/s",
        lambda: executor_rate(tasks, count(9, scale)),
    )
    measure(
        "payload_64mib",
        "64 MiB bytes to a Pool(1) worker and back, GB/s each way",
        "GB/s",
        lambda: payload_rate(count(5, scale)),
    )

    version = platform.python_version()
    print()
    print(f"| work | Python {version} |")
    print("|---|---|")
    order = [key for key in ROWS if key in figures]
    for key in order:
        label, value, unit = figures[key]
        print(f"| {label} | {format_figure(value, unit)} |")
    if args.tsv:
        with open(args.tsv, "w") as out:
            out.write(f"python_version\t{version}\n")
            for key, (_, value, _) in figures.items():
                out.write(f"{key}\t{value}\n")


def format_figure(value, unit):
    if unit == "us":
        return f"{value / 1000:.1f} ms" if value >= 10_000 else f"{value:,.0f} µs"
    if unit == "tasks/s":
        return f"{value / 1e6:.2f}M tasks/s" if value >= 1e6 else f"{value / 1e3:.0f}k tasks/s"
    if unit == "GB/s":
        return f"{value:.2f} GB/s"
    return f"{value / 1024:.1f} MiB" if value >= 10_240 else f"{value:,.0f} KiB"


if __name__ == "__main__":
    main()
