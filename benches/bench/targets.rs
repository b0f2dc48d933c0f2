//! The targets, checked against the figures of the run.

use crate::report::{Peer, Python, Row, Unit, factor};

/// The targets, each as a ratio from this run.
pub fn print_targets(rows: &[Row], python: &Python) {
    let row = |key: &str| rows.iter().find(|row| row.key == key);
    let ours = |key: &str| row(key).and_then(|row| row.ours);
    let floor = |key: &str| row(key).and_then(|row| row.floor.map(|(value, _)| value));
    let procspawn = |key: &str| match row(key).map(|row| row.procspawn) {
        Some(Peer::Value(value)) => Some(value),
        _ => None,
    };
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!("Targets of issue 6, as measured in this run:");

    // 1. Spawn + join: ratios of our time to the peer's.
    let times = [
        (
            "spawn_forkserver",
            "ForkServer (default)",
            "the fork + pipe floor",
            1.5,
            true,
        ),
        ("spawn_spawn", "Spawn", "procspawn", 1.0, false),
        ("spawn_fork", "Fork", "the fork + pipe floor", 1.2, true),
    ];
    for (key, title, peer, limit, against_floor) in times {
        let other = if against_floor {
            floor(key)
        } else {
            procspawn(key)
        };
        if let (Some(ours), Some(other)) = (ours(key), other) {
            let ratio = ours / other;
            println!(
                "1. spawn + join, {title}: {ratio:.2}× the time of {peer} (target ≤ {limit}×): {}",
                verdict(ratio <= limit)
            );
        }
    }

    // 2. Pool, one at a time.
    let key = "pool_apply_async";
    if let Some(ours) = ours(key) {
        if let Some(floor) = floor(key) {
            let ratio = ours / floor;
            println!(
                "2. pool one at a time: {ratio:.2}× the hand-rolled fork + pipes rate (target ≥ 0.5×): {}",
                verdict(ratio >= 0.5)
            );
        }
        for (peer, rate) in [("procspawn", procspawn(key)), ("Python", python.get(key))] {
            if let Some(rate) = rate {
                let ratio = ours / rate;
                println!(
                    "2. pool one at a time: {ratio:.1}× {peer}'s rate (target ≥ 10×): {}",
                    verdict(ratio >= 10.0)
                );
            }
        }
    }

    // 3. Pool map against Python's Pool.map.
    if let (Some(ours), Some(python)) = (ours("pool_map"), python.get("pool_map")) {
        let ratio = ours / python;
        println!(
            "3. pool map: {ratio:.2}× Python's Pool.map (target ≥ 3×): {}",
            verdict(ratio >= 3.0)
        );
    }

    // 4. The 64 MiB payload.
    let key = "payload_64mib";
    if let Some(ours) = ours(key) {
        println!(
            "4. 64 MiB payload: {ours:.2} GB/s each way (target ≥ 2 GB/s): {}",
            verdict(ours >= 2.0)
        );
        if let Some(memcpy) = floor(key) {
            let ratio = memcpy / ours;
            println!(
                "4. 64 MiB payload: memcpy is {ratio:.1}× faster (target ≤ 3×): {}",
                verdict(ratio <= 3.0)
            );
        }
    }

    // 5. Idle worker memory.
    let key = "pss_idle_forkserver";
    if let Some(ours) = ours(key) {
        if let Some(procspawn) = procspawn(key) {
            let ratio = ours / procspawn;
            println!(
                "5. idle worker Pss (ForkServer): {ratio:.2}× procspawn's (target ≤ 1×): {}",
                verdict(ratio <= 1.0)
            );
        }
        if let Some(python) = python.get(key) {
            let ratio = ours / python;
            println!(
                "5. idle worker Pss (ForkServer): {ratio:.3}× Python's (target ≤ 0.1×): {}",
                verdict(ratio <= 0.1)
            );
        }
    }

    // 6. Scaling: reported; "flat" read as within 1.2× of the latency with one live child.
    if let (Some(one), Some(many)) = (ours("scaling_spawn_1"), ours("scaling_spawn_500")) {
        let ratio = many / one;
        println!(
            "6. spawn latency with 500 live children: {ratio:.2}× that with 1 (flat, read as ≤ 1.2×): {}",
            verdict(ratio <= 1.2)
        );
    }
    let curve: Vec<String> = [1, 2, 4]
        .into_iter()
        .filter_map(|n| {
            let key = format!("scaling_pool_{n}");
            let rate = ours(&key)?;
            let floor = floor(&key)
                .map(|floor| format!(" ({:.2}× the floor)", factor(Unit::Rate, rate, floor)));
            Some(format!(
                "{n} → {}{}",
                Unit::Rate.format(rate),
                floor.unwrap_or_default()
            ))
        })
        .collect();
    if !curve.is_empty() {
        println!("6. pool throughput by workers: {}", curve.join(", "));
    }
    let memory: Vec<String> = [1, 100, 500]
        .into_iter()
        .filter_map(|n| {
            let pss = ours(&format!("scaling_pss_{n}"))?;
            Some(format!("{n} → {}", Unit::Kib.format(pss)))
        })
        .collect();
    if !memory.is_empty() {
        println!("6. Pss per live child: {}", memory.join(", "));
    }
}
