//! The table: one row per workload, our figure beside procspawn's, the OS floor's and Python's,
//! with our ratio to each.

use std::collections::HashMap;

/// What a figure measures, and so how it is printed and which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A latency in microseconds; lower is better.
    Micros,
    /// Tasks per second; higher is better.
    Rate,
    /// Gigabytes (10^9 bytes) per second; higher is better.
    GigabytesPerSecond,
    /// Memory in KiB; lower is better.
    Kib,
}

impl Unit {
    fn lower_is_better(self) -> bool {
        matches!(self, Unit::Micros | Unit::Kib)
    }

    /// Words for "ours is N× better" and "N× worse".
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Unit::Kib => ("smaller", "larger"),
            _ => ("faster", "slower"),
        }
    }

    pub fn format(self, value: f64) -> String {
        match self {
            Unit::Micros if value >= 10_000.0 => format!("{:.1} ms", value / 1000.0),
            Unit::Micros if value < 10.0 => format!("{value:.1} µs"),
            Unit::Micros => format!("{} µs", thousands(value)),
            Unit::Rate if value >= 1e6 => format!("{:.2}M tasks/s", value / 1e6),
            Unit::Rate if value >= 1e4 => format!("{:.0}k tasks/s", value / 1e3),
            Unit::Rate => format!("{} tasks/s", thousands(value)),
            Unit::GigabytesPerSecond => format!("{value:.2} GB/s"),
            Unit::Kib if value >= 10_240.0 => format!("{:.1} MiB", value / 1024.0),
            Unit::Kib => format!("{} KiB", thousands(value)),
        }
    }
}

/// `value` rounded, with commas between thousands.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A peer's figure for a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Peer {
    /// Not measured in this run (filtered out, or no such peer figure).
    Missing,
    /// The peer has no such feature.
    NotApplicable,
    Value(f64),
}

impl Peer {
    fn value(self) -> Option<f64> {
        match self {
            Peer::Value(value) => Some(value),
            _ => None,
        }
    }
}

impl From<Option<f64>> for Peer {
    fn from(value: Option<f64>) -> Peer {
        value.map_or(Peer::Missing, Peer::Value)
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    /// The name the Python script prints its figure under.
    pub key: &'static str,
    pub label: String,
    pub unit: Unit,
    pub ours: Option<f64>,
    pub procspawn: Peer,
    /// The floor's figure and what it is.
    pub floor: Option<(f64, &'static str)>,
}

impl Row {
    pub fn new(key: &'static str, label: impl Into<String>, unit: Unit, ours: Option<f64>) -> Row {
        Row {
            key,
            label: label.into(),
            unit,
            ours,
            procspawn: Peer::Missing,
            floor: None,
        }
    }

    pub fn procspawn(mut self, figure: impl Into<Peer>) -> Row {
        self.procspawn = figure.into();
        self
    }

    pub fn floor(mut self, figure: Option<f64>, what: &'static str) -> Row {
        self.floor = figure.map(|figure| (figure, what));
        self
    }
}

/// How many times better `ours` is than `other` (below 1: worse).
pub fn factor(unit: Unit, ours: f64, other: f64) -> f64 {
    if unit.lower_is_better() {
        other / ours
    } else {
        ours / other
    }
}

fn ratio(unit: Unit, ours: Option<f64>, other: Option<f64>) -> String {
    let (Some(ours), Some(other)) = (ours, other) else {
        return String::new();
    };
    let factor = factor(unit, ours, other);
    let (better, worse) = unit.words();
    if factor >= 1.0 {
        format!("{factor:.2}× {better}")
    } else {
        format!("{:.2}× {worse}", 1.0 / factor)
    }
}

/// Figures of the Python script (`scripts/bench.py --tsv FILE`): `key<TAB>value` lines.
#[derive(Debug, Default)]
pub struct Python {
    pub version: Option<String>,
    figures: HashMap<String, f64>,
}

impl Python {
    /// Reads the file named by `BENCH_PYTHON`, if set.
    pub fn from_env() -> std::io::Result<Python> {
        let Some(path) = std::env::var_os("BENCH_PYTHON") else {
            return Ok(Python::default());
        };
        let text = std::fs::read_to_string(path)?;
        let mut python = Python::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('\t') else {
                continue;
            };
            if key == "python_version" {
                python.version = Some(value.to_owned());
            } else if let Ok(value) = value.parse() {
                python.figures.insert(key.to_owned(), value);
            }
        }
        Ok(python)
    }

    pub fn get(&self, key: &str) -> Option<f64> {
        self.figures.get(key).copied()
    }
}

/// Prints `rows` as a Markdown table.
pub fn print_table(rows: &[Row], python: &Python) {
    let python_name = match &python.version {
        Some(version) => format!("Python {version}"),
        None => "Python".to_owned(),
    };
    let header = [
        "work",
        "ours",
        "procspawn 1.0.2",
        "OS floor",
        python_name.as_str(),
        "ours vs procspawn",
        "ours vs floor",
        "ours vs Python",
    ];
    let mut lines = vec![header.map(str::to_owned).to_vec()];
    for row in rows {
        let show = |figure: Option<f64>| figure.map(|v| row.unit.format(v)).unwrap_or_default();
        let procspawn = match row.procspawn {
            Peer::Missing => String::new(),
            Peer::NotApplicable => "n/a".to_owned(),
            Peer::Value(value) => row.unit.format(value),
        };
        let floor = row
            .floor
            .map(|(value, what)| format!("{} ({what})", row.unit.format(value)))
            .unwrap_or_default();
        let py = python.get(row.key);
        lines.push(vec![
            row.label.clone(),
            show(row.ours),
            procspawn,
            floor,
            show(py),
            ratio(row.unit, row.ours, row.procspawn.value()),
            ratio(row.unit, row.ours, row.floor.map(|(value, _)| value)),
            ratio(row.unit, row.ours, py),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            lines
                .iter()
                .map(|line| line[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (i, line) in lines.iter().enumerate() {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("| {} |", cells.join(" | "));
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
            println!("|-{}-|", rule.join("-|-"));
        }
    }
}
