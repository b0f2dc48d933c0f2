//! The one report of a [`Process`](crate::Process) started by `fork`, on a pipe of its own.
//!
//! A forked child sends exactly one report. On an ipc-channel channel of its own, that cost a
//! third of a `Fork` spawn + join beyond the raw fork + pipe floor: a socket pair made and torn
//! down per child, a 200 KiB receive buffer allocated per message, and in the child, ipc-channel's
//! code and allocations, each page of which is a page fault in a process that shares its memory
//! with its parent. So the report travels on a pipe: the child encodes it into a buffer its parent
//! allocated before the fork, behind a [`HEADER`], and writes it with one `write`; the parent
//! reads it with `read`.
//!
//! A pipe cannot pass file descriptors, and a report's attachments (shared objects, large byte
//! strings; see [`attach`](crate::attach)) are file descriptors. Those go on the process's
//! *inbox*: one ipc-channel channel per parent process, made at its first `Fork` spawn and
//! inherited by every child it forks. A child with attachments sends them there, tagged with the
//! token its parent gave it, *before* it writes its report to the pipe, whose header says that
//! they exist; so when the parent has read that header, the attachments are already in the
//! inbox, and taking them never waits for a child. A thread of the parent reads the inbox all the
//! time and keeps each message under its token until that child's report is read (see
//! [`inbox`]). The inbox message is small (a token and the descriptors); the report's bytes,
//! however large, go on the pipe, which the parent reads as they come.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Instant;

use crate::attach::{Attachments, Payload};
use crate::wire;

/// Bytes before the report: its length, little-endian, with [`ATTACHED`] set if the report has
/// attachments in the inbox.
const HEADER: usize = 8;

/// The header's flag for a report whose attachments are in the inbox.
const ATTACHED: u64 = 1 << 63;

/// The most bytes read at once (and reserved ahead: the length came from another process).
const STEP: usize = 1 << 20;

/// The child's end: where it writes its report.
#[derive(Debug)]
pub(crate) struct Sender {
    pipe: OwnedFd,
    /// Allocated by the parent, with room for the header: a child writing into it allocates
    /// nothing for a small report.
    buffer: Vec<u8>,
    token: u64,
    inbox: &'static Inbox,
}

/// The parent's end: what it has read of the report so far.
#[derive(Debug)]
pub(crate) struct Receiver {
    pipe: OwnedFd,
    token: u64,
    inbox: &'static Inbox,
    header: [u8; HEADER],
    /// How much of `header` has been read.
    header_read: usize,
    /// The report read so far.
    body: Vec<u8>,
}

/// A pipe for one report, and the buffer the child will encode it into. Made by the parent
/// before the fork; the child keeps the [`Sender`], the parent the [`Receiver`].
pub(crate) fn pair() -> io::Result<(Sender, Receiver)> {
    let inbox = inbox()?;
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
    let mut buffer = Vec::with_capacity(256);
    buffer.extend_from_slice(&[0; HEADER]);
    Ok((
        Sender {
            pipe: write,
            buffer,
            token,
            inbox,
        },
        Receiver {
            pipe: read,
            token,
            inbox,
            header: [0; HEADER],
            header_read: 0,
            body: Vec::new(),
        },
    ))
}

impl Sender {
    /// In the child: runs `work`, which encodes the report after what the buffer holds and
    /// gathers its attachments, and sends the report. Returns the exit code `work` chose.
    ///
    /// Nothing is freed: the child is about to exit, and a free writes to pages it shares with
    /// its parent.
    #[inline(always)]
    pub(crate) fn send(self, work: &mut crate::spawn::Closure) -> i32 {
        let Sender {
            pipe,
            mut buffer,
            token,
            inbox,
        } = self;
        let mut shared = Vec::new();
        let mut exit_code = work(&mut buffer, &mut shared);
        let mut flags = 0;
        if shared.is_empty() {
            std::mem::forget(shared);
        } else {
            flags = send_attachments(inbox, token, shared, &mut buffer, &mut exit_code);
        }
        let header = (buffer.len() - HEADER) as u64 | flags;
        buffer[..HEADER].copy_from_slice(&header.to_le_bytes());
        // The parent may be gone; then nobody wants the report.
        let _ = write_all(pipe.as_fd(), &buffer);
        std::mem::forget((pipe, buffer));
        exit_code
    }
}

/// Sends a report's attachments to the inbox, tagged with `token`; returns the header's flags.
/// If they cannot go, the report in `buffer` becomes a failure that says why.
#[cold]
#[inline(never)]
fn send_attachments(
    inbox: &Inbox,
    token: u64,
    shared: Attachments,
    buffer: &mut Vec<u8>,
    exit_code: &mut i32,
) -> u64 {
    let attachments = Payload {
        bytes: wire::Bytes(token.to_le_bytes().to_vec()),
        shared,
    };
    match inbox.sender.send(attachments) {
        Ok(()) => ATTACHED,
        Err(error) => {
            buffer.truncate(HEADER);
            *exit_code = crate::task::encode_report_into::<()>(
                &crate::task::Report::Failed(format!(
                    "the return value's shared objects could not be sent: {error}"
                )),
                buffer,
            );
            0
        }
    }
}

/// Writes all of `bytes`, with `write(2)` itself: in the child, which runs it, std's `write_all`
/// would be one more stretch of code to fault in.
#[inline(always)]
fn write_all(pipe: BorrowedFd<'_>, mut bytes: &[u8]) -> nix::Result<()> {
    while !bytes.is_empty() {
        match nix::unistd::write(pipe, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// What [`Receiver::receive`] found.
#[derive(Debug)]
pub(crate) enum Received {
    /// The whole report, with its attachments.
    Report(Payload),
    /// No report will come: the pipe closed, or the child ended without writing it all.
    Nothing,
    /// The deadline passed first.
    NotYet,
}

impl Receiver {
    /// Reads until the report is whole, or until it is clear that none will come: the pipe
    /// closed, or the child, whose pidfd is `child`, has ended without writing it all (a copy of
    /// the pipe's write end in a process the child forked would keep the pipe open); or until
    /// `deadline` (`None`: none) passes.
    pub(crate) fn receive(
        &mut self,
        child: BorrowedFd<'_>,
        deadline: Option<Instant>,
    ) -> io::Result<Received> {
        // Once the child has ended, what it wrote is all in the pipe: read it without waiting.
        let mut ended = false;
        loop {
            let wanted = match self.header() {
                Some(header) => {
                    let length = header & !ATTACHED;
                    let left = length.saturating_sub(self.body.len() as u64) as usize;
                    if left == 0 {
                        let shared = if header & ATTACHED != 0 {
                            self.inbox.take(self.token)?
                        } else {
                            Vec::new()
                        };
                        return Ok(Received::Report(Payload {
                            bytes: wire::Bytes(std::mem::take(&mut self.body)),
                            shared,
                        }));
                    }
                    left
                }
                None => 0,
            };
            let wait_until = if ended {
                Some(Instant::now())
            } else {
                deadline
            };
            let [readable, child_ended] =
                crate::sys::wait_any_readable([self.pipe.as_fd(), child], wait_until)?;
            let read = if readable {
                if wanted > 0 {
                    self.read_body(wanted)
                } else {
                    self.read_header()
                }
            } else if child_ended && !ended {
                ended = true;
                continue;
            } else if ended {
                Ok(0)
            } else if deadline.is_none_or(|deadline| Instant::now() < deadline) {
                continue;
            } else {
                return Ok(Received::NotYet);
            };
            match read {
                Ok(0) => {
                    // It may have sent attachments before it ended: nobody wants them now.
                    self.inbox.discard(self.token);
                    return Ok(Received::Nothing);
                }
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// In the child: closes its copy of the parent's end, and touches nothing else (its buffer
    /// and the inbox are shared with the parent, and a write there would copy a page).
    pub(crate) fn close_in_child(self) {
        let Receiver { pipe, body, .. } = self;
        drop(pipe);
        std::mem::forget(body);
    }

    /// In the parent, once the child is forked: closes the child's end, and keeps the buffer
    /// the child writes its report into (its copy of it) to read the report into. Dropping it
    /// would write to the allocator's pages while the child still shares them.
    pub(crate) fn keep_buffer(mut self, sender: Sender) -> Receiver {
        let Sender {
            pipe, mut buffer, ..
        } = sender;
        drop(pipe);
        buffer.clear();
        self.body = buffer;
        self
    }

    /// Gives up on the report (its handle was dropped): closes the pipe now, so that a child
    /// still writing a report larger than the pipe holds gets an error instead of waiting for
    /// ever, and returns what lets go of the attachments it may have sent, to run once it has
    /// ended.
    pub(crate) fn abandon(self) -> impl FnOnce() + Send + 'static {
        let Receiver { inbox, token, .. } = self;
        move || inbox.discard(token)
    }

    /// The header, once all of it is in.
    fn header(&self) -> Option<u64> {
        (self.header_read == HEADER).then(|| u64::from_le_bytes(self.header))
    }

    /// Reads the rest of the header and, with it, as much of a small report as has come.
    fn read_header(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 4096];
        let n = nix::unistd::read(&self.pipe, &mut chunk)?;
        let header = (HEADER - self.header_read).min(n);
        self.header[self.header_read..][..header].copy_from_slice(&chunk[..header]);
        self.header_read += header;
        if n > header {
            let length = u64::from_le_bytes(self.header) & !ATTACHED;
            // Never more than the header says: the rest would be garbage.
            let body = length.min((n - header) as u64) as usize;
            self.body.reserve_exact(length.min(STEP as u64) as usize);
            self.body.extend_from_slice(&chunk[header..][..body]);
        }
        Ok(n)
    }

    /// Reads up to `wanted` more bytes of the report, straight into its buffer.
    fn read_body(&mut self, wanted: usize) -> io::Result<usize> {
        let wanted = wanted.min(STEP);
        self.body.reserve(wanted);
        let spare = &mut self.body.spare_capacity_mut()[..wanted];
        // SAFETY: the pointer and length describe the vector's spare capacity, which `read`
        // may write to; nothing reads it before `set_len` below covers what was written.
        let n = unsafe {
            libc::read(
                self.pipe.as_raw_fd(),
                spare.as_mut_ptr().cast(),
                spare.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `read` initialised the first `n` bytes of the spare capacity.
        unsafe { self.body.set_len(self.body.len() + n as usize) };
        Ok(n as usize)
    }
}

/// The token of the next child forked in this process (inherited values are never reused
/// within the process that holds them: each process's inbox is its own).
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(0);

/// Where this process's forked children send their reports' attachments.
#[derive(Debug)]
pub(crate) struct Inbox {
    /// The process it belongs to.
    owner: u32,
    sender: wire::Sender,
    mail: Mutex<Mail>,
    /// Signalled whenever the reader files a message, or stops.
    filed: Condvar,
}

/// What the inbox has received and not yet handed out.
#[derive(Debug, Default)]
struct Mail {
    /// Attachments of children whose parent has not come for them yet, by token.
    kept: HashMap<u64, Attachments>,
    /// Why the inbox is no longer read, once it is not.
    closed: Option<String>,
}

/// The bytes of an inbox message: a child's token, followed, in the message its parent sends
/// itself when it gives up on a report, by [`DISCARD`].
const DISCARD: u8 = 1;

/// This process's inbox, once made. Made once per process and never freed, so that senders and
/// receivers hold it without counting references (a count changed in the parent after the fork
/// is a page copied).
static INBOX: Mutex<Option<&'static Inbox>> = Mutex::new(None);

/// This process's inbox, made if it has none yet, with the thread that reads it. One inherited
/// through `fork` is its parent's, and is left to it.
///
/// The inbox holds a few hundred messages, and a child with attachments to send waits for room
/// before it writes its report and ends. So it is read all the time, by a thread of its own,
/// whatever the parent does meanwhile: joins, polls `is_alive` or a sentinel, drops handles, or
/// exits waiting for its children. (ipc-channel keeps its descriptor to itself, so it cannot be
/// polled together with anything else.)
fn inbox() -> io::Result<&'static Inbox> {
    let mut slot = INBOX.lock().unwrap_or_else(PoisonError::into_inner);
    let me = std::process::id();
    if let Some(inbox) = *slot {
        if inbox.owner == me {
            return Ok(inbox);
        }
    }
    let (sender, channel) = wire::channel()?;
    let inbox: &'static Inbox = Box::leak(Box::new(Inbox {
        owner: me,
        sender,
        mail: Mutex::new(Mail::default()),
        filed: Condvar::new(),
    }));
    std::thread::Builder::new()
        .name("process-tasks-inbox".to_owned())
        .spawn(move || inbox.read(channel))?;
    *slot = Some(inbox);
    Ok(inbox)
}

impl Inbox {
    /// The reader: files every message as it comes, until the channel fails (it never closes:
    /// this process holds a sender for as long as it lives).
    fn read(&self, channel: wire::Receiver) {
        let closed = loop {
            match channel.recv() {
                Ok(payload) => self.file(payload),
                Err(ipc_channel::IpcError::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => break error.to_string(),
            }
        };
        self.lock().closed = Some(closed);
        self.filed.notify_all();
    }

    /// Keeps what a child sent, under its token, for its parent to take; or drops what was kept
    /// for a report given up on.
    fn file(&self, payload: Payload) {
        let bytes = payload.bytes.0.as_slice();
        // Only this crate's processes send here; anything else is dropped.
        let Some(token) = bytes
            .first_chunk::<8>()
            .map(|token| u64::from_le_bytes(*token))
        else {
            return;
        };
        let mut mail = self.lock();
        match bytes[8..] {
            [] => {
                mail.kept.insert(token, payload.shared);
            }
            [DISCARD] => {
                // Dropped outside the lock: a shared object's drop unmaps its segment.
                let discarded = mail.kept.remove(&token);
                drop(mail);
                drop(discarded);
                return;
            }
            _ => return,
        }
        drop(mail);
        self.filed.notify_all();
    }

    /// Takes the attachments of the child with `token`, which it sent before its report's
    /// header said so: kept already, or about to be.
    fn take(&self, token: u64) -> io::Result<Attachments> {
        let mut mail = self.lock();
        loop {
            if let Some(shared) = mail.kept.remove(&token) {
                return Ok(shared);
            }
            if let Some(reason) = &mail.closed {
                return Err(io::Error::other(format!(
                    "the inbox of shared objects is no longer read: {reason}"
                )));
            }
            mail = self
                .filed
                .wait(mail)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Lets go of the attachments of the child with `token`, whose report nobody will read. It
    /// has ended (or closed its pipe), so whatever it sent is ahead of this message, which the
    /// reader files after them.
    fn discard(&self, token: u64) {
        if crate::children::exiting() {
            return;
        }
        let mut bytes = token.to_le_bytes().to_vec();
        bytes.push(DISCARD);
        // If the inbox is no longer read, nothing will be kept either.
        let _ = self.sender.send(Payload {
            bytes: wire::Bytes(bytes),
            shared: Vec::new(),
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mail> {
        self.mail.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::prelude::*;

    #[process_task]
    fn make_value(start: u64) -> crate::Value<u64> {
        crate::Value::new(start).expect("a shared value")
    }

    /// Whether the inbox keeps nothing.
    fn inbox_is_empty() -> bool {
        super::inbox().unwrap().lock().kept.is_empty()
    }

    #[test]
    fn the_shared_objects_of_a_child_whose_handle_was_dropped_are_let_go() {
        // Its report is never read: what it sent beside it would stay in the inbox for ever if
        // nothing let go of it once the child had ended.
        let child = Process::builder(make_value)
            .start_method(StartMethod::Fork)
            .spawn(7)
            .unwrap();
        let pid = child.pid();
        drop(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        // Reaped (by the reaper thread): what it sent is in the inbox by now.
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the child was not reaped"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        while !inbox_is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the dropped child's shared object is still in the inbox"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // And the inbox still serves the next child.
        let child = Process::builder(make_value)
            .start_method(StartMethod::Fork)
            .spawn(8)
            .unwrap();
        assert_eq!(child.join().unwrap().get(), 8);
    }
}
