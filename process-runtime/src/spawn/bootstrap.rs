//! Starting a process by executing this program again: the `Spawn` children and the fork server.
//!
//! # How a re-executed process finds its way
//!
//! The parent executes `/proc/self/exe` (the very file it runs from, even if it was replaced on
//! disk since) with the variable `PROCESS_TASKS_BOOTSTRAP` set. A constructor of this crate (an
//! `.init_array` entry, run by the C library before `main`) sees the variable, removes it, and
//! takes over: the program's `main` — or the test harness, or the doctest — never runs. So no
//! setup line is needed in `main`, and the same binary works as a program, a test and a child.
//!
//! # The handshake
//!
//! 1. The parent makes a pipe and passes its write end to the child as its standard input, with a
//!    fresh 32-byte secret and its own pid in the variable. Only that child has the pipe: whatever
//!    arrives on it comes from the child, and end-of-file means it died, so the parent never
//!    waits blindly. (Standard input, because std then starts the child with `posix_spawn`
//!    rather than a full `fork` of the parent; the child puts /dev/null there afterwards.)
//! 2. The child opens an [`IpcOneShotServer`] (its socket in a directory in memory when it can,
//!    see `open_endpoint`) and writes its name on the pipe (or why it cannot run, such as a task
//!    that is not registered in this executable).
//! 3. The parent connects to it and sends a [`Hello`]: the secret, and what to do, with the
//!    channels to do it with (the child's report channel, and so on).
//! 4. The child checks the secret. Anybody else who connected to the endpoint first is refused,
//!    and the child ends; the parent then cannot connect and reports the failure. A child thus
//!    only ever runs work its parent sent, and its report channel is a socket nobody else holds.
//!
//! Until the handshake ends, the child has `PR_SET_PDEATHSIG` set (its constructor sets it, and
//! exits if its parent is already gone), so it cannot outlive a parent that dies meanwhile; a
//! non-daemon child clears it when it starts its task.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ipc_channel::ipc::{IpcOneShotServer, IpcSender};
use serde::{Deserialize, Serialize};

use super::Start;
use super::forkserver::ServerStart;
use crate::error::SpawnError;
use crate::sys;
use crate::task::{self, EXIT_FAILURE, Lookup};

/// The variable that turns a run of this program into a child.
const ENV: &str = "PROCESS_TASKS_BOOTSTRAP";

/// How long a parent waits for a re-executed child to reach its handshake. Generous: a loaded
/// machine can take seconds to start a large program.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

type Secret = [u8; 32];

/// What a re-executed process is to become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Child,
    ForkServer,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Child => "child",
            Role::ForkServer => "forkserver",
        }
    }
}

/// The first and only message on a child's bootstrap endpoint.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Hello {
    secret: Secret,
    body: Body,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Body {
    Child(Box<Start>),
    ForkServer(ServerStart),
}

static EXECUTABLE: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Sets the program that `Spawn` children and the fork server execute (Python's
/// `multiprocessing.set_executable`). The default, `/proc/self/exe`, is the running program; set
/// another only to a program built with the same tasks, or every spawn of a task missing there
/// fails with [`SpawnError::NotRegistered`].
pub fn set_executable(path: impl Into<PathBuf>) {
    *EXECUTABLE.lock().unwrap_or_else(PoisonError::into_inner) = Some(path.into());
}

/// Holds the executable's lock across a fork (see [`crate::current::lock_for_fork`]).
pub(crate) fn lock_executable_for_fork() -> std::sync::MutexGuard<'static, impl Sized> {
    EXECUTABLE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn executable() -> PathBuf {
    EXECUTABLE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .unwrap_or_else(|| PathBuf::from("/proc/self/exe"))
}

/// A re-executed process that reached its handshake, and the sender to complete it with.
#[derive(Debug)]
pub(crate) struct Launched {
    pub(crate) pid: i32,
    pub(crate) pidfd: OwnedFd,
    /// The program it runs, for messages.
    pub(crate) program: PathBuf,
    endpoint: IpcSender<Hello>,
    secret: Secret,
}

impl Launched {
    /// Sends the child what to do, and returns its pid and pidfd. On failure the child is killed
    /// and reaped.
    pub(crate) fn complete(self, body: Body) -> Result<(i32, OwnedFd), SpawnError> {
        let hello = Hello {
            secret: self.secret,
            body,
        };
        match self.endpoint.send(hello) {
            Ok(()) => Ok((self.pid, self.pidfd)),
            Err(error) => Err(self.abort(format!("could not send the child its work: {error}"))),
        }
    }

    /// Kills and reaps the child, and describes the failure.
    fn abort(self, reason: String) -> SpawnError {
        kill_and_reap(&self.pidfd);
        SpawnError::Bootstrap { reason }
    }
}

fn kill_and_reap(pidfd: &OwnedFd) -> Option<sys::ExitStatus> {
    let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
    sys::waitid_pidfd(pidfd.as_fd(), true).ok().flatten()
}

/// Executes this program as a `role` process, for task `task` (a child) or none (the fork
/// server), and waits until it is ready for its [`Hello`].
pub(crate) fn launch(role: Role, task: Option<&str>) -> Result<Launched, SpawnError> {
    let secret: Secret = sys::random_bytes().map_err(|e| SpawnError::os("read random bytes", e))?;
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SpawnError::os("create a pipe", e.into()))?;
    let program = executable();
    let parent_pid = std::process::id();
    let value = format!(
        "{} {} {} {}",
        role.as_str(),
        parent_pid,
        hex(&secret),
        task.unwrap_or("-")
    );
    let mut command = Command::new(&program);
    // The pipe's write end is the child's standard input: the one descriptor besides 1 and 2
    // that std passes without a `pre_exec` hook, which would force a full `fork` of this
    // process where `posix_spawn` costs a fraction. The child swaps in /dev/null once it has
    // answered, and sets its parent-death signal itself.
    command.env(ENV, value).stdin(Stdio::from(write_end));
    if let Some(arg0) = std::env::args_os().next() {
        command.arg0(arg0);
    }
    let child = command
        .spawn()
        .map_err(|e| SpawnError::os(format!("execute {}", program.display()), e))?;
    drop(command);
    let pid = child.id() as i32;
    let pidfd = sys::pidfd_open(pid).map_err(|e| SpawnError::os("open a pidfd", e))?;

    let line = match read_line(read_end, Instant::now() + HANDSHAKE_TIMEOUT) {
        Ok(Some(line)) => line,
        Ok(None) => {
            let status = kill_and_reap(&pidfd);
            return Err(SpawnError::Startup {
                status: status.map_or_else(|| "unknown".to_owned(), |s| s.to_string()),
            });
        }
        Err(error) => {
            kill_and_reap(&pidfd);
            return Err(SpawnError::Bootstrap {
                reason: format!("no handshake from the child: {error}"),
            });
        }
    };
    let reap_with = |error: SpawnError| {
        kill_and_reap(&pidfd);
        error
    };
    let name = match line.split_once(' ') {
        Some(("ready", name)) => name.to_owned(),
        _ if line == "missing" => {
            return Err(reap_with(SpawnError::NotRegistered {
                name: task.unwrap_or_default().to_owned(),
                executable: program.display().to_string(),
            }));
        }
        _ if line == "ambiguous" => {
            return Err(reap_with(SpawnError::AmbiguousName {
                name: task.unwrap_or_default().to_owned(),
            }));
        }
        _ => {
            return Err(reap_with(SpawnError::Bootstrap {
                reason: format!("the child said {line:?}"),
            }));
        }
    };
    let connected = IpcSender::connect(name.clone());
    // A connected socket needs its path no more. The child would remove it once it has read our
    // message, but a child killed before that would leave it behind in the temp dir: remove it
    // here, now that nobody else has any business connecting.
    remove_endpoint(&name);
    match connected {
        Ok(endpoint) => Ok(Launched {
            pid,
            pidfd,
            program,
            endpoint,
            secret,
        }),
        Err(error) => Err(reap_with(SpawnError::Bootstrap {
            reason: format!("could not connect to the child's bootstrap endpoint: {error}"),
        })),
    }
}

/// Removes a bootstrap endpoint's socket and the directory ipc-channel made for it.
fn remove_endpoint(name: &str) {
    let path = std::path::Path::new(name);
    let _ = std::fs::remove_file(path);
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir(dir);
    }
}

/// Reads one line from `pipe`; `None` when the writer closed it first (the child died).
fn read_line(pipe: OwnedFd, deadline: Instant) -> std::io::Result<Option<String>> {
    let mut file = std::fs::File::from(pipe);
    let mut line = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        if !sys::wait_readable(file.as_fd(), Some(deadline))? {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the child was not ready after {HANDSHAKE_TIMEOUT:?}"),
            ));
        }
        match file.read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => {
                line.extend_from_slice(&buf[..n]);
                if let Some(end) = line.iter().position(|&b| b == b'\n') {
                    line.truncate(end);
                    return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Secret> {
    let mut secret = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(secret)
}

/// Compares two secrets in time that does not depend on where they differ.
fn same_secret(a: &Secret, b: &Secret) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the first message on a bootstrap endpoint: only a [`Hello`] carrying `secret` is
/// accepted.
pub(crate) fn accept(server: IpcOneShotServer<Hello>, secret: &Secret) -> Result<Body, String> {
    match server.accept() {
        Ok((_, hello)) if same_secret(&hello.secret, secret) => Ok(hello.body),
        Ok(_) => Err("refused a bootstrap connection that did not carry the child's secret".into()),
        Err(error) => Err(format!("the bootstrap connection failed: {error}")),
    }
}

/// What the bootstrap variable said.
struct Config {
    role: Role,
    /// The pid of the process that started this one.
    parent: i32,
    secret: Secret,
    task: String,
}

fn parse(value: &OsStr) -> Option<Config> {
    let text = std::str::from_utf8(value.as_bytes()).ok()?;
    let mut parts = text.splitn(4, ' ');
    let role = match parts.next()? {
        "child" => Role::Child,
        "forkserver" => Role::ForkServer,
        _ => return None,
    };
    let parent = parts.next()?.parse().ok()?;
    let secret = unhex(parts.next()?)?;
    let task = parts.next()?.to_owned();
    Some(Config {
        role,
        parent,
        secret,
        task,
    })
}

/// Runs before `main` in every program that links this crate. Returns at once unless the
/// bootstrap variable is set; otherwise the process becomes the child it describes and never
/// returns.
extern "C" fn boot(
    _argc: libc::c_int,
    _argv: *const *const libc::c_char,
    _env: *const *const libc::c_char,
) {
    let Some(value) = std::env::var_os(ENV) else {
        return;
    };
    // SAFETY: constructors run before `main`, while the process has a single thread, so nothing
    // can read the environment concurrently.
    unsafe { std::env::remove_var(ENV) };
    become_bootstrapped(value)
}

#[used]
#[unsafe(link_section = ".init_array")]
static BOOT: extern "C" fn(libc::c_int, *const *const libc::c_char, *const *const libc::c_char) =
    boot;

fn become_bootstrapped(value: OsString) -> ! {
    let Some(config) = parse(&value) else {
        eprintln!(
            "process-tasks: malformed {ENV} value {value:?}; was this program started by hand?"
        );
        sys::exit_now(EXIT_FAILURE);
    };
    // A Rust `main` ignores SIGPIPE before it starts; this process will never reach `main`, so
    // do the same here, or a write to a closed pipe would kill it instead of failing.
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // Die with the parent until the handshake is done (a non-daemon child clears this when it
    // starts its task), and give up if the parent is already gone.
    let _ = sys::set_parent_death_signal(libc::SIGKILL);
    if sys::getppid() != config.parent {
        sys::exit_now(EXIT_FAILURE);
    }
    // SAFETY: the parent passed the handshake pipe as standard input, for us alone. The `File`
    // is never dropped: `stdin_from_dev_null` below replaces descriptor 0, which closes the pipe.
    let mut pipe = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(0) });
    if config.role == Role::Child {
        let refusal = match task::lookup(&config.task) {
            Ok(_) => None,
            Err(Lookup::Missing) => Some("missing"),
            Err(Lookup::Ambiguous) => Some("ambiguous"),
        };
        if let Some(refusal) = refusal {
            let _ = say(&mut pipe, refusal);
            sys::exit_now(EXIT_FAILURE);
        }
    }
    let (server, name) = match open_endpoint() {
        Ok(server) => server,
        Err(error) => {
            let _ = say(
                &mut pipe,
                &format!("error could not open a bootstrap endpoint: {error}"),
            );
            sys::exit_now(EXIT_FAILURE);
        }
    };
    if say(&mut pipe, &format!("ready {name}")).is_err() {
        sys::exit_now(EXIT_FAILURE);
    }
    sys::stdin_from_dev_null();
    let body = match accept(server, &config.secret) {
        Ok(body) => body,
        Err(reason) => {
            eprintln!("process-tasks: {reason}");
            sys::exit_now(EXIT_FAILURE);
        }
    };
    match body {
        Body::Child(start) => super::exec::run_child(*start),
        Body::ForkServer(start) => super::forkserver::serve(start),
    }
}

/// Opens the bootstrap endpoint, in a directory in memory when the program has not chosen one.
///
/// ipc-channel puts the endpoint's socket in a directory it makes under `std::env::temp_dir()`,
/// `/tmp` unless `TMPDIR` says otherwise. Where `/tmp` is on disk (ext4 on the machine of the
/// README's figures: 133 µs to make and remove a directory there, 12 µs in `/dev/shm`), that was
/// a tenth of the time of a `Spawn`. The endpoint lives only for the handshake, so with `TMPDIR`
/// unset it goes in `$XDG_RUNTIME_DIR` or `/dev/shm` (memory, by convention) when this process
/// may write there, and in the default place otherwise. Called while the process has a single
/// thread (from the constructor); `TMPDIR` is unset again before anything else runs.
fn open_endpoint() -> std::io::Result<(IpcOneShotServer<Hello>, String)> {
    const TMPDIR: &str = "TMPDIR";
    /// What ipc-channel adds to the directory: `/.tmpXXXXXX/socket`.
    const SOCKET_IN_DIR: usize = "/.tmpXXXXXX/socket".len();
    /// The room for a path in a Unix socket's address, with its final NUL (108 bytes).
    const SOCKET_ADDRESS: usize =
        std::mem::size_of::<libc::sockaddr_un>() - std::mem::size_of::<libc::sa_family_t>();
    if std::env::var_os(TMPDIR).is_some() {
        return IpcOneShotServer::new();
    }
    let in_memory = [std::env::var_os("XDG_RUNTIME_DIR"), Some("/dev/shm".into())]
        .into_iter()
        .flatten()
        .find(|dir| {
            // ipc-channel needs the socket's path as UTF-8 (it panics otherwise, and here that
            // is an abort), and cuts it silently where the address has no more room (the
            // socket is then made where nobody removes it).
            let fits = dir
                .to_str()
                .is_some_and(|dir| dir.len() + SOCKET_IN_DIR < SOCKET_ADDRESS);
            let dir = std::path::Path::new(dir);
            fits && dir.is_absolute()
                && nix::unistd::access(
                    dir,
                    nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
                )
                .is_ok()
        });
    let Some(dir) = in_memory else {
        return IpcOneShotServer::new();
    };
    // SAFETY: the process has a single thread here (see above), so nothing reads the
    // environment meanwhile; the variable is removed again right after.
    unsafe { std::env::set_var(TMPDIR, &dir) };
    let opened = IpcOneShotServer::new();
    // SAFETY: as above.
    unsafe { std::env::remove_var(TMPDIR) };
    // Somewhere the directory could not be made after all: the default place.
    opened.or_else(|_| IpcOneShotServer::new())
}

/// Writes `line` and its newline on the handshake pipe in one `write`: `writeln!` on a `File`
/// writes piece by piece, and the parent would wake up for each piece.
fn say(pipe: &mut std::fs::File, line: &str) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    pipe.write_all(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_through_hex() {
        let secret: Secret = sys::random_bytes().unwrap();
        assert_eq!(unhex(&hex(&secret)), Some(secret));
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn an_impostor_without_the_secret_is_refused() {
        let secret: Secret = sys::random_bytes().unwrap();
        let (server, name) = IpcOneShotServer::<Hello>::new().unwrap();
        let impostor = std::thread::spawn(move || {
            let endpoint: IpcSender<Hello> = IpcSender::connect(name).unwrap();
            let (requests_tx, requests) = ipc_channel::ipc::channel().unwrap();
            let (replies, _replies_rx) = ipc_channel::ipc::channel().unwrap();
            drop(requests_tx);
            endpoint
                .send(Hello {
                    secret: [7; 32],
                    body: Body::ForkServer(ServerStart::new(requests, replies)),
                })
                .unwrap();
        });
        let refused = accept(server, &secret).unwrap_err();
        assert!(
            refused.contains("did not carry the child's secret"),
            "{refused}"
        );
        impostor.join().unwrap();
    }

    #[test]
    fn the_holder_of_the_secret_is_accepted() {
        let secret: Secret = sys::random_bytes().unwrap();
        let (server, name) = IpcOneShotServer::<Hello>::new().unwrap();
        let parent = std::thread::spawn(move || {
            let endpoint: IpcSender<Hello> = IpcSender::connect(name).unwrap();
            let (_requests_tx, requests) = ipc_channel::ipc::channel().unwrap();
            let (replies, _replies_rx) = ipc_channel::ipc::channel().unwrap();
            endpoint
                .send(Hello {
                    secret,
                    body: Body::ForkServer(ServerStart::new(requests, replies)),
                })
                .unwrap();
        });
        assert!(matches!(accept(server, &secret), Ok(Body::ForkServer(_))));
        parent.join().unwrap();
    }
}
