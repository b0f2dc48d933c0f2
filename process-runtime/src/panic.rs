//! Turning a panic in a child into a [`PanicInfo`] for its parent.
//!
//! A child installs [`install_hook`] before it runs its task. The hook remembers where the panic
//! happened (only the hook sees the location) and prints a Python-like report to stderr; the
//! payload that `catch_unwind` returns gives the message.

use std::any::Any;
use std::cell::RefCell;
use std::io::Write;

use crate::error::{Location, PanicInfo};

thread_local! {
    static LAST_LOCATION: RefCell<Option<Location>> = const { RefCell::new(None) };
}

/// Installs the child's panic hook: it records the location for [`take_panic_info`] and prints
/// `Process <name> (pid <pid>) panicked at <file:line:col>:` and the message, then a backtrace
/// when `RUST_BACKTRACE` asks for one.
pub(crate) fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| Location::new(l.file(), l.line(), l.column()));
        let message = payload_message(info.payload());
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
    }));
}

/// The message of a panic payload: the `&str` or `String` it carries, or `"Box<dyn Any>"` as
/// std's own hook says for other payloads.
fn payload_message(payload: &(dyn Any + Send)) -> String {
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
    PanicInfo::new(payload_message(payload), location)
}
