//! What runs and how often, timing, and memory readings.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::Result;

/// The median of `samples`.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    assert!(!samples.is_empty(), "no samples");
    samples.sort();
    let mid = samples.len() / 2;
    if samples.len() % 2 == 1 {
        samples[mid]
    } else {
        (samples[mid - 1] + samples[mid]) / 2
    }
}

/// Runs `f(i)` `warmup` times untimed, then `iterations` times timed; the median time of one call.
pub fn median_of(
    warmup: u64,
    iterations: u64,
    mut f: impl FnMut(u64) -> Result<()>,
) -> Result<Duration> {
    for i in 0..warmup {
        f(i)?;
    }
    let mut samples = Vec::with_capacity(iterations as usize);
    for i in 0..iterations {
        let began = Instant::now();
        f(warmup + i)?;
        samples.push(began.elapsed());
    }
    Ok(median(samples))
}

/// The proportional set size of a process in KiB, from `/proc/<pid>/smaps_rollup`: its private
/// memory plus its share of the pages it shares with others.
pub fn pss_kib(pid: u32) -> std::io::Result<f64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    rollup
        .lines()
        .find_map(|line| line.strip_prefix("Pss:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .ok_or_else(|| std::io::Error::other(format!("no Pss line for pid {pid}")))
}

/// Lets a just-started process settle (finish starting, fault in what it touches) before its
/// memory is read.
pub fn settle() {
    std::thread::sleep(Duration::from_millis(300));
}

/// What to run: the measurements named by `BENCH_ONLY` or the arguments (all by default), with
/// every count scaled by `BENCH_SCALE`.
pub struct Config {
    only: Vec<String>,
    scale: f64,
}

impl Config {
    pub fn from_env() -> Config {
        let mut only: Vec<String> = std::env::var("BENCH_ONLY")
            .unwrap_or_default()
            .split(',')
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect();
        // `cargo bench` passes `--bench`; anything else after `--` is a filter.
        only.extend(std::env::args().skip(1).filter(|arg| !arg.starts_with('-')));
        let scale = std::env::var("BENCH_SCALE")
            .ok()
            .and_then(|scale| scale.parse().ok())
            .unwrap_or(1.0);
        Config { only, scale }
    }

    /// Whether the measurement `name` runs in this run.
    pub fn wants(&self, name: &str) -> bool {
        self.only.is_empty()
            || self.only.iter().any(|only| match only.strip_suffix('$') {
                Some(exact) => name == exact,
                None => name.starts_with(only.as_str()),
            })
    }

    /// Whether any measurement of `group` (a prefix such as `payload`) runs in this run.
    pub fn wants_group(&self, group: &str) -> bool {
        self.only.is_empty()
            || self
                .only
                .iter()
                .map(|only| only.trim_end_matches('$'))
                .any(|only| only.starts_with(group) || group.starts_with(only))
    }

    /// `base` iterations or tasks, scaled by `BENCH_SCALE`.
    pub fn count(&self, base: u64) -> u64 {
        ((base as f64 * self.scale).round() as u64).max(1)
    }

    /// Runs `measure` if `name` is wanted, saying so on stderr.
    pub fn run<T>(&self, name: &str, measure: impl FnOnce() -> Result<T>) -> Result<Option<T>> {
        if !self.wants(name) {
            return Ok(None);
        }
        eprint!("{name} ... ");
        let began = Instant::now();
        let value = measure()?;
        eprintln!("{:.1?}", began.elapsed());
        Ok(Some(value))
    }
}

/// How many calls of one variant [`interleaved`] makes in a row.
const BLOCK: u64 = 20;

/// A measured call: its name in filters, and the call, given the iteration number.
pub type Variant<'a> = (&'static str, Box<dyn FnMut(u64) -> Result<()> + 'a>);

/// Runs each wanted variant `warmup` times untimed, then all of them in turns, [`BLOCK`] calls
/// each per turn, until each has made `iterations` timed calls; the median time of each, by name.
/// A slow moment of the machine falls on all of them alike, and within a block the caches are
/// as warm as in a loop of one kind of call.
pub fn interleaved(
    config: &Config,
    warmup: u64,
    iterations: u64,
    variants: Vec<Variant<'_>>,
) -> Result<HashMap<&'static str, Duration>> {
    let mut variants: Vec<_> = variants
        .into_iter()
        .filter(|(name, _)| config.wants(name))
        .map(|(name, call)| (name, call, Vec::with_capacity(iterations as usize)))
        .collect();
    let names: Vec<&str> = variants.iter().map(|(name, _, _)| *name).collect();
    eprint!("{} in turns ... ", names.join(", "));
    let began = Instant::now();
    for (_, call, _) in &mut variants {
        for i in 0..warmup {
            call(i)?;
        }
    }
    let mut done = 0;
    while done < iterations {
        let block = BLOCK.min(iterations - done);
        for (_, call, samples) in &mut variants {
            for i in done..done + block {
                let started = Instant::now();
                call(warmup + i)?;
                samples.push(started.elapsed());
            }
        }
        done += block;
    }
    eprintln!("{:.1?}", began.elapsed());
    Ok(variants
        .into_iter()
        .map(|(name, _, samples)| (name, median(samples)))
        .collect())
}
