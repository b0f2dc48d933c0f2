//! Turning a panic in a child into a [`PanicInfo`] for its parent.
//!
//! The runtime installs one panic hook per program, in the parent, before it starts its first
//! child ([`install_hook`]). The hook passes panics of an ordinary process to the hook that was
//! there before, untouched. In a child of the runtime ([`mark_child`]) it remembers where the
//! panic happened (only a hook sees the location) and prints a Python-like report; the payload
//! that `catch_unwind` returns gives the message.
//!
//! Installing it in the parent, not in each child, matters for `Fork`: `set_hook` takes a lock
//! that another thread of the parent may hold at the moment of the fork, and a forked child that
//! tried to take it would wait forever. A forked child inherits the installed hook instead.

use std::any::Any;
use std::cell::RefCell;
use std::io::Write;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Location, PanicInfo};

thread_local! {
    static LAST_LOCATION: RefCell<Option<Location>> = const { RefCell::new(None) };
}

/// Set in a child of the runtime, where the hook reports panics for the parent.
static IN_CHILD: AtomicBool = AtomicBool::new(false);

static INSTALL: Once = Once::new();

/// Installs the runtime's panic hook, once per program (a forked child inherits it).
pub(crate) fn install_hook() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_CHILD.load(Ordering::Relaxed) {
                report(info);
            } else {
                previous(info);
            }
        }));
    });
}

/// Makes this process a child whose panics are reported to its parent.
pub(crate) fn mark_child() {
    IN_CHILD.store(true, Ordering::Relaxed);
}

/// Records the location for [`take_panic_info`] and prints `Process <name> (pid <pid>) panicked
/// at <file:line:col>:` and the message, then a backtrace when `RUST_BACKTRACE` asks for one.
fn report(info: &std::panic::PanicHookInfo<'_>) {
    let location = info
        .location()
        .map(|l| Location::new(l.file(), l.line(), l.column()));
    let message = message_of(info.payload());
    let me = crate::current::current_process();
    let mut stderr = std::io::stderr().lock();
    let _ = match &location {
        Some(location) => writeln!(
            stderr,
            "Process {} (pid {}) panicked at {location}:\n{message}",
            me.name(),
            me.pid()
        ),
        None => writeln!(
            stderr,
            "Process {} (pid {}) panicked:\n{message}",
            me.name(),
            me.pid()
        ),
    };
    let backtrace = std::backtrace::Backtrace::capture();
    if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
        let _ = writeln!(stderr, "stack backtrace:\n{backtrace}");
    }
    LAST_LOCATION.with(|slot| *slot.borrow_mut() = location);
}

/// The message of a panic payload: the `&str` or `String` it carries, or `"Box<dyn Any>"` as
/// std's own hook says for other payloads.
pub(crate) fn message_of(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

/// The [`PanicInfo`] of the panic whose payload `catch_unwind` just returned on this thread.
pub(crate) fn take_panic_info(payload: &(dyn Any + Send)) -> PanicInfo {
    let location = LAST_LOCATION.with(|slot| slot.borrow_mut().take());
    PanicInfo::new(message_of(payload), location)
}
