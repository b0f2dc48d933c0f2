//! Runs every example under `examples/` and checks what it prints: the lines in the order the
//! program fixes, as sets where the operating system decides the order, the pids where one
//! process prints another's, and the timing claims of the lessons, with generous bounds.
//!
//! The examples run at the same time, one thread each, so the test takes about as long as the
//! slowest of them (some 6 s), not their sum. `cargo test` builds the example binaries before it
//! runs any test; they are found next to this test's own executable.

use std::collections::BTreeMap;
use std::panic;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Checks what one example printed; panics if it is wrong.
type Check = fn(&Run);

/// Every example, with the check of its output.
const CHECKED: &[(&str, Check)] = &[
    ("create_function", create_function),
    ("create_struct", create_struct),
    ("multiple_children", multiple_children),
    ("join", join),
    ("join_many", join_many),
    ("pid", pid),
    ("name", name),
    ("args_kwargs", args_kwargs),
    ("terminate", terminate),
    ("kill", kill),
    ("daemon", daemon),
    ("daemon_no_children", daemon_no_children),
    ("zombie_orphan", zombie_orphan),
    ("fork_wait", fork_wait),
    ("sync_async", sync_async),
    ("target_call", target_call),
    ("pool", pool),
    ("pool_apply", pool_apply),
    ("components", components),
    ("isolation", isolation),
];

/// How long all the examples together may take before the test gives up on them. They need
/// some 6 s; the rest is for slow, loaded machines.
const DEADLINE: Duration = Duration::from_secs(120);

#[test]
fn every_example_is_checked() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut on_disk = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read examples/") {
        let path = entry.expect("read examples/").path();
        if path.extension().is_some_and(|e| e == "rs") {
            on_disk.push(path.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    for name in &on_disk {
        assert!(
            CHECKED.iter().any(|(checked, _)| checked == name),
            "examples/{name}.rs has no check in tests/examples.rs"
        );
    }
    for (name, _) in CHECKED {
        assert!(
            on_disk.iter().any(|n| n == name),
            "tests/examples.rs checks {name}, but there is no examples/{name}.rs"
        );
    }
}

#[test]
fn every_example_prints_what_its_tutorial_prints() {
    let started = Instant::now();
    let (done, finished) = mpsc::channel();
    let mut running = BTreeMap::new();
    for &(name, check) in CHECKED {
        let start = Instant::now();
        let child = Command::new(example_binary(name))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start example {name}: {e}"));
        running.insert(name, child.id());
        let done = done.clone();
        thread::spawn(move || {
            // Returns once the example has ended and every process it started has closed its
            // output: a child left running would show in `elapsed`.
            let output = child.wait_with_output();
            let _ = done.send((name, check, output, start.elapsed()));
        });
    }
    drop(done);

    let mut failures = Vec::new();
    while !running.is_empty() {
        let Ok((name, check, output, elapsed)) =
            finished.recv_timeout(DEADLINE.saturating_sub(started.elapsed()))
        else {
            break;
        };
        let pid = running.remove(name).expect("each example reports once");
        let output = output.unwrap_or_else(|e| panic!("could not read the output of {name}: {e}"));
        let run = Run {
            pid,
            lines: String::from_utf8_lossy(&output.stdout)
                .lines()
                .map(str::to_owned)
                .collect(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            status: output.status,
            elapsed,
        };
        let checked = panic::catch_unwind(|| {
            assert!(run.status.success(), "it ended with {}", run.status);
            check(&run);
        });
        if checked.is_err() {
            eprintln!(
                "--- {name} printed, in {elapsed:.2?}:\n{}\n--- and on stderr:\n{}",
                run.lines.join("\n"),
                run.stderr
            );
            failures.push(name.to_owned());
        }
    }
    for (name, pid) in running {
        // Not yet waited for, so the pid is still this example's.
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        failures.push(format!("{name} (still running after {DEADLINE:?}; killed)"));
    }
    assert!(
        failures.is_empty(),
        "these examples did not print what they should: {}",
        failures.join(", ")
    );
}

/// The path of an example's binary: `target/<profile>/examples/<name>`, next to the `deps`
/// directory that holds this test's executable.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let path = profile_dir.join("examples").join(name);
    let build = "`cargo test` builds the examples before it runs the tests, but `cargo test \
                 --test examples` does not: run `cargo build --examples` first";
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("example binary {} is missing. {build}", path.display()));
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("examples/{name}.rs"));
    let edited = std::fs::metadata(&source).and_then(|m| m.modified());
    assert!(
        edited.is_ok_and(|edited| edited <= built),
        "example binary {} is older than {}. {build}",
        path.display(),
        source.display()
    );
    path
}

/// What one example did.
struct Run {
    /// The example's pid: the parent process of the programs that print their parent's pid.
    pid: u32,
    lines: Vec<String>,
    stderr: String,
    status: ExitStatus,
    elapsed: Duration,
}

impl Run {
    /// The lines, less those that match one of `patterns` (lines the OS may or may not let a
    /// process print before it is stopped).
    fn without(&self, patterns: &[&str]) -> Vec<String> {
        self.lines
            .iter()
            .filter(|line| !patterns.iter().any(|p| matches(line, p)))
            .cloned()
            .collect()
    }
}

/// Whether `line` is `pattern`, where each `{}` in the pattern stands for a number.
fn matches(line: &str, pattern: &str) -> bool {
    let mut parts = pattern.split("{}");
    let Some(mut rest) = line.strip_prefix(parts.next().unwrap_or("")) else {
        return false;
    };
    for part in parts {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match rest[digits..].strip_prefix(part) {
            Some(after) if digits > 0 => rest = after,
            _ => return false,
        }
    }
    rest.is_empty()
}

/// The numbers in a line, such as the pids in `我是子进程PID:31517,父进程PPID:31516`.
fn numbers(line: &str) -> Vec<u32> {
    line.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The numbers in the one line that matches `pattern`.
fn numbers_in(lines: &[String], pattern: &str) -> Vec<u32> {
    let found: Vec<&String> = lines.iter().filter(|l| matches(l, pattern)).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one line like {pattern:?}, found {found:?}"
    );
    numbers(found[0])
}

/// The one number in the one line that matches `pattern`.
fn number_in(lines: &[String], pattern: &str) -> u32 {
    numbers_in(lines, pattern)[0]
}

/// The seconds in the one line that is `prefix` followed by a number, such as `主进程: 3.0037`.
fn seconds_in(line: &str, prefix: &str) -> f64 {
    line.strip_prefix(prefix)
        .and_then(|rest| rest.trim_end_matches('s').parse().ok())
        .unwrap_or_else(|| panic!("expected {prefix:?} and a number of seconds, found {line:?}"))
}

/// Checks that `lines` are the groups one after the other, the lines of each group in any order.
fn expect_groups(lines: &[String], groups: &[&[&str]]) {
    let mut at = 0;
    for group in groups {
        let chunk = lines.get(at..at + group.len()).unwrap_or_else(|| {
            panic!(
                "expected {group:?} from line {}, but the output has {} lines",
                at + 1,
                lines.len()
            )
        });
        let mut unmatched: Vec<&String> = chunk.iter().collect();
        for pattern in *group {
            let Some(i) = unmatched.iter().position(|line| matches(line, pattern)) else {
                panic!(
                    "lines {}..={}: expected {group:?} in any order, found {chunk:?}",
                    at + 1,
                    at + group.len()
                );
            };
            unmatched.remove(i);
        }
        at += group.len();
    }
    assert_eq!(
        at,
        lines.len(),
        "unexpected lines at the end: {:?}",
        &lines[at..]
    );
}

/// Checks that `lines` are exactly `expected`, in that order.
fn expect_lines(lines: &[String], expected: &[&str]) {
    let groups: Vec<&[&str]> = expected.iter().map(std::slice::from_ref).collect();
    expect_groups(lines, &groups);
}

/// Checks that `line_a` comes before `line_b`; each must occur once.
fn expect_before(lines: &[String], line_a: &str, line_b: &str) {
    let position = |pattern: &str| {
        let found: Vec<usize> = (0..lines.len())
            .filter(|&i| matches(&lines[i], pattern))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected one line like {pattern:?}, found {}",
            found.len()
        );
        found[0]
    };
    assert!(
        position(line_a) < position(line_b),
        "{line_a:?} should come before {line_b:?}"
    );
}

/// Checks that `lines` are a child's loop of `cycle` cut short by `terminate`: the cycle over and
/// over, stopped anywhere before its tenth round ended.
fn expect_cut_loop(lines: &[String], cycle: &[&str]) {
    for (i, line) in lines.iter().enumerate() {
        let pattern = cycle[i % cycle.len()];
        assert!(
            matches(line, pattern),
            "line {i} of the loop: expected {pattern:?}, found {line:?}"
        );
    }
    assert!(
        lines.len() < 10 * cycle.len(),
        "the loop ran to its end: it was not terminated"
    );
}

fn create_function(run: &Run) {
    expect_groups(
        &run.lines,
        &[
            // Seed 000: the parent's line and the child's first, in the order the OS chose.
            &["主进程", "cwz的任务开始执行"],
            &["cwz的任务已经结束"],
            // Seed 002: the parent sleeps 3 s, the child 2 s.
            &["进程 start"],
            &["进程 end"],
            &["主进程"],
            // Seed 001
            &["主进程开始", "pl is runing"],
            &["pl is gone"],
        ],
    );
}

fn create_struct(run: &Run) {
    let (classes, seed_004) = run.lines.split_at(run.lines.len().min(9));
    expect_groups(
        classes,
        &[
            &["主进程", "开始执行任务"],
            &["结束执行任务"],
            &["主进程", "pl is running"],
            &["pl is gone"],
            &["主进程", "子进程的性别是女------>start"],
            &["子进程end"],
        ],
    );
    // Seed 004: the child prints its loop until it is terminated, 0.1 s after it started.
    let (parent, child): (Vec<String>, Vec<String>) = seed_004
        .iter()
        .cloned()
        .partition(|line| line.starts_with("父进程") || line.starts_with("the child"));
    expect_lines(
        &parent,
        &[
            &format!("父进程PID:{}", run.pid),
            "the child was killed by signal 15 (SIGTERM)",
            "父进程结束",
        ],
    );
    expect_cut_loop(
        &child,
        &[
            "helloworld",
            r#"ProcessFun { args: [1, 2], kwargs: {"A": "a"} }"#,
            "子进程pid:{}",
        ],
    );
    assert!(
        child
            .iter()
            .all(|line| !line.contains(&run.pid.to_string()))
    );
    // The parent's last two lines come after the child's end.
    assert_eq!(seed_004.last().map(String::as_str), Some("父进程结束"));
}

fn multiple_children(run: &Run) {
    expect_groups(
        &run.lines,
        &[
            &["子进程ocean-————>start", "子进程sky-————>start"],
            &["主进程", "进程ocean-————>end", "进程sky-————>end"],
        ],
    );
    // Both slept their 2 s at the same time; one after the other would take 4 s.
    assert!(
        run.elapsed < Duration::from_millis(3500),
        "took {:?}",
        run.elapsed
    );
}

fn join(run: &Run) {
    expect_lines(&run.lines, &["neo start...", "neo over...", "主进程"]);
}

fn join_many(run: &Run) {
    let one_program: &[&[&str]] = &[
        &["is running", "is running", "is running"],
        &["is gone"],
        &["1"],
        &["is gone"],
        &["2"],
        &["is gone"],
        &["3"],
    ];
    let (first, second) = run.lines.split_at(run.lines.len().min(10));
    for lines in [first, second] {
        let (last, lines) = lines.split_last().expect("two programs of 10 lines");
        expect_groups(lines, one_program);
        // The children slept 1, 2 and 3 s at the same time: about 3 s, not 6.
        let total = seconds_in(last, "主进程: ");
        assert!((3.0..5.0).contains(&total), "主进程: {total}");
    }
}

fn pid(run: &Run) {
    expect_groups(
        &run.lines,
        &[
            &[
                "主进程 {}",
                "主主进程 {}",
                "子进程 {}",
                "neo start... {}",
                "neo 父进程id {}",
            ],
            &["neo over... {}"],
        ],
    );
    expect_before(&run.lines, "主进程 {}", "主主进程 {}");
    expect_before(&run.lines, "主主进程 {}", "子进程 {}");
    expect_before(&run.lines, "neo start... {}", "neo 父进程id {}");
    let child = number_in(&run.lines, "子进程 {}");
    assert_eq!(number_in(&run.lines, "主进程 {}"), run.pid);
    // The example's parent is this test.
    assert_eq!(number_in(&run.lines, "主主进程 {}"), std::process::id());
    assert_eq!(number_in(&run.lines, "neo start... {}"), child);
    assert_eq!(number_in(&run.lines, "neo over... {}"), child);
    assert_eq!(number_in(&run.lines, "neo 父进程id {}"), run.pid);
    assert_ne!(child, run.pid);
}

fn name(run: &Run) {
    expect_groups(
        &run.lines,
        &[
            &["主进程名称:MainProcess"],
            &["test", "子进程名称:test"],
            &["Process-2", "子进程名称:Process-2"],
        ],
    );
}

fn args_kwargs(run: &Run) {
    expect_lines(
        &run.lines,
        &[
            "a=10, b=10, c=100",
            "helloworld",
            "[1, 2]",
            r#"{"A": "a"}"#,
            "子进程pid:{}",
        ],
    );
    assert_ne!(number_in(&run.lines, "子进程pid:{}"), run.pid);
}

fn terminate(run: &Run) {
    // Seed 000's child may print its first line before SIGTERM reaches it, never its last.
    let lines = run.without(&["neo start... {}"]);
    let (seed_000, seed_004) = lines.split_at(lines.len().min(5));
    expect_lines(
        seed_000,
        &[
            "true",
            "false",
            "Some(-15)",
            &format!("主进程 {}", run.pid),
            &format!("主主进程 {}", std::process::id()),
        ],
    );
    let (parent, child): (Vec<String>, Vec<String>) = seed_004.iter().cloned().partition(|line| {
        line.starts_with("父进程") || line.starts_with("the child") || line == "false"
    });
    expect_lines(
        &parent,
        &[
            &format!("父进程PID:{}", run.pid),
            "false",
            "the child was killed by signal 15 (SIGTERM), exitcode Some(-15)",
            "父进程结束",
        ],
    );
    expect_cut_loop(&child, &["helloworld", "子进程pid:{}"]);
    assert_eq!(seed_004.last().map(String::as_str), Some("父进程结束"));
}

fn kill(run: &Run) {
    expect_lines(
        &run.lines,
        &[
            "kill -9 {}",
            "the child was killed by signal 9 (SIGKILL), exitcode Some(-9)",
            "the child was killed by signal 9 (SIGKILL), exitcode Some(-9)",
        ],
    );
}

fn daemon(run: &Run) {
    // The daemons may print their first line before they are terminated, never the others.
    let lines = run.without(&["cwz start... {}", "123"]);
    expect_groups(&lines, &[&["主进程", "main-------", "456"], &["end456"]]);
    expect_before(&lines, "主进程", "main-------");
}

fn daemon_no_children(run: &Run) {
    expect_groups(
        &run.lines,
        &[
            &["Process-1 开启了子进程 Process-1:1", "孙进程 Process-1:1"],
            &["Process-2 (daemon): daemonic processes are not allowed to have children"],
        ],
    );
}

fn zombie_orphan(run: &Run) {
    expect_lines(
        &run.lines,
        &[
            "子进程 {} 已经结束, 状态 Some('Z')",
            "wait 之后, 状态 None",
            "孤儿进程 {}: 父进程 {}",
            "杀死父进程 {}",
            "孤儿进程 {}: 新的父进程 {}",
            "子进程 {} 结束",
            "子进程 {} 已被回收, 状态 None",
        ],
    );
    let [orphan, parent] = numbers_in(&run.lines, "孤儿进程 {}: 父进程 {}")[..] else {
        unreachable!("two numbers")
    };
    let [orphan_again, adopter] = numbers_in(&run.lines, "孤儿进程 {}: 新的父进程 {}")[..]
    else {
        unreachable!("two numbers")
    };
    assert_eq!(orphan, orphan_again);
    assert_eq!(number_in(&run.lines, "杀死父进程 {}"), parent);
    assert_ne!(adopter, parent, "the orphan was not re-parented");
    assert_eq!(
        number_in(&run.lines, "子进程 {} 结束"),
        number_in(&run.lines, "子进程 {} 已被回收, 状态 None")
    );
}

fn fork_wait(run: &Run) {
    // Parent and child print at the same time; `wait` returns after the child's last line.
    let (interleaved, last_two) = run.lines.split_at(run.lines.len().saturating_sub(2));
    let (child, parent): (Vec<String>, Vec<String>) = interleaved
        .iter()
        .cloned()
        .partition(|line| line.starts_with("我是子进程"));
    let mut parent_lines = vec!["我是父进程PID:{},父进程PPID:{}"];
    parent_lines.extend(["父进程"; 5]);
    parent_lines.push("父进程\"任务\"结束");
    expect_lines(&parent, &parent_lines);
    let mut child_lines = vec!["我是子进程PID:{},父进程PPID:{}"];
    child_lines.extend(["我是子进程"; 10]);
    expect_lines(&child, &child_lines);
    expect_lines(last_two, &["子进程结束,pid为{},结束状态256", "退出码1"]);

    let [me, my_parent] = numbers_in(&parent, "我是父进程PID:{},父进程PPID:{}")[..] else {
        unreachable!("two numbers")
    };
    assert_eq!((me, my_parent), (run.pid, std::process::id()));
    let [child_pid, its_parent] = numbers_in(&child, "我是子进程PID:{},父进程PPID:{}")[..]
    else {
        unreachable!("two numbers")
    };
    assert_eq!(its_parent, run.pid);
    assert_eq!(numbers(&last_two[0])[0], child_pid);
    // The child's error went to stderr, as Python's traceback does.
    assert!(
        run.stderr.contains("抛出异常状态"),
        "stderr: {}",
        run.stderr
    );
}

fn sync_async(run: &Run) {
    let (sync, rest) = run.lines.split_at(run.lines.len().min(9));
    let (sync_time, sync) = sync.split_last().expect("the synchronous part");
    expect_lines(
        sync,
        &[
            "开始执行任务0",
            "结束执行任务0",
            "开始执行任务1",
            "结束执行任务1",
            "开始执行任务2",
            "结束执行任务2",
            "开始执行任务3",
            "结束执行任务3",
        ],
    );
    let (async_time, rest) = rest.split_last().expect("the asynchronous part");
    expect_groups(
        rest,
        &[&[
            "开始执行任务0",
            "开始执行任务1",
            "开始执行任务2",
            "开始执行任务3",
            "结束执行任务0",
            "结束执行任务1",
            "结束执行任务2",
            "结束执行任务3",
        ]],
    );
    for i in 0..4 {
        expect_before(
            rest,
            &format!("开始执行任务{i}"),
            &format!("结束执行任务{i}"),
        );
    }
    // Four tasks of 0.5 s: 2 s one after the other, about 0.5 s side by side.
    let sync_time = seconds_in(sync_time, "同步: ");
    let async_time = seconds_in(async_time, "异步: ");
    assert!(sync_time >= 2.0, "同步: {sync_time}");
    assert!((0.5..1.5).contains(&async_time), "异步: {async_time}");
}

fn target_call(run: &Run) {
    expect_lines(
        &run.lines,
        &[
            &format!("主进程 {}", run.pid),
            // work1.call() runs in this process,
            &format!("work1 在进程 {} 中执行", run.pid),
            // work1.spawn() in another.
            "work1 在进程 {} 中执行",
        ],
    );
    assert_ne!(numbers(&run.lines[2])[0], run.pid);
}

/// Ten tasks on four workers: each task starts, then ends; never more than four run at once.
fn pool(run: &Run) {
    assert!(run.status.success(), "{}", run.stderr);
    let mut running = 0usize;
    let mut most = 0usize;
    let mut started = std::collections::BTreeSet::new();
    let mut ended = std::collections::BTreeSet::new();
    for line in &run.lines {
        if let Some(n) = line.strip_prefix("开始执行任务") {
            let n: u32 = n.parse().unwrap_or_else(|_| panic!("{line:?}"));
            assert!(started.insert(n), "task {n} started twice");
            running += 1;
            most = most.max(running);
        } else if let Some(n) = line.strip_prefix("结束执行任务") {
            let n: u32 = n.parse().unwrap_or_else(|_| panic!("{line:?}"));
            assert!(started.contains(&n), "task {n} ended before it started");
            assert!(ended.insert(n), "task {n} ended twice");
            running -= 1;
        } else {
            panic!("unexpected line {line:?}");
        }
    }
    assert_eq!(started, (0..10).collect());
    assert_eq!(ended, (0..10).collect());
    assert!(most <= 4, "{most} tasks ran at once on a pool of four");
}

/// Blocking submission: strictly one task after the other.
fn pool_apply(run: &Run) {
    assert!(run.status.success(), "{}", run.stderr);
    let expected: Vec<String> = (0..10)
        .flat_map(|i| [format!("开始执行任务{i}"), format!("结束执行任务{i}")])
        .collect();
    assert_eq!(run.lines, expected);
}

/// Queue, Pipe and Lock: every 包子 is made once and eaten once, after it was made; an eater's
/// two lines are never split by another process's line (the lock); the bookkeeper's entries
/// and total, sent through the pipe, match what the eaters said.
fn components(run: &Run) {
    let lines = &run.lines;
    let mut made = BTreeMap::new(); // 包子 -> the line that says it was made
    let mut eaten = BTreeMap::new(); // 包子 -> who ate it
    let mut full = BTreeMap::new(); // eater -> how many it says it ate
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        if let Some((cook, baozi)) = line.split_once(" 做好了 ") {
            assert!(["厨师A", "厨师B"].contains(&cook), "{line:?}");
            assert!(
                made.insert(baozi.to_owned(), i).is_none(),
                "{baozi} made twice"
            );
        } else if let Some((who, baozi)) = line.split_once(" 拿到了 ") {
            assert!(
                made.get(baozi).is_some_and(|&at| at < i),
                "{who} took {baozi} before it was made"
            );
            assert_eq!(
                lines.get(i + 1),
                Some(&format!("{who} 吃完了 {baozi}")),
                "line {}: another line came between {who}'s two lines",
                i + 2
            );
            assert!(
                eaten.insert(baozi.to_owned(), who.to_owned()).is_none(),
                "{baozi} eaten twice"
            );
            i += 1;
        } else if let Some((who, count)) = line.split_once(" 吃饱了, 一共吃了 ") {
            let count: usize = count.trim_end_matches(" 个").parse().expect("a count");
            full.insert(who.to_owned(), count);
        } else {
            break;
        }
        i += 1;
    }
    let all: Vec<String> = ["A", "B"]
        .iter()
        .flat_map(|cook| (1..=3).map(move |n| format!("包子{cook}{n}")))
        .collect();
    assert_eq!(made.keys().cloned().collect::<Vec<_>>(), all);
    assert_eq!(eaten.keys().cloned().collect::<Vec<_>>(), all);
    let ate = |who: &str| eaten.values().filter(|w| *w == who).count();
    for who in ["吃货1", "吃货2"] {
        assert_eq!(full.get(who), Some(&ate(who)), "what {who} says it ate");
    }
    expect_lines(
        &lines[i..],
        &[
            &format!("记账: 吃货1 吃了 {} 个", ate("吃货1")),
            &format!("记账: 吃货2 吃了 {} 个", ate("吃货2")),
            "主进程: 记账进程说一共吃了 6 个包子",
        ],
    );
}

/// Each seed's program, then its shared version. Only 000's first three lines are in the order
/// the OS chooses: the parent prints while the child runs.
fn isolation(run: &Run) {
    assert!(run.status.success(), "{}", run.stderr);
    expect_groups(
        &run.lines,
        &[
            &["执行func函数", "100", "主进程"],
            &["执行func函数"],
            &["200"],
            &["主进程"],
            &["子进程：pl1"],
            &["主进程：pl"],
            &["子进程：pl1"],
            &["主进程：pl1"],
            &["子进程的x修改为100"],
            &["0"],
            &["子进程的x修改为100"],
            &["100"],
            &["work1 g_list: [11, 22, 0, 1, 2]"],
            &["work2 g_list: [11, 22]"],
            &["work1 g_list: [11, 22, 0, 1, 2]"],
            &["work2 g_list: [11, 22, 0, 1, 2]"],
        ],
    );
    // In 000 the parent's two lines keep their order.
    let first = &run.lines[..3];
    let hundred = first.iter().position(|l| l == "100");
    let main = first.iter().position(|l| l == "主进程");
    assert!(hundred < main, "{first:?}");
}
