//! The [`Task`] trait and the registry that lets any process of the same executable find a task
//! by name.
//!
//! `#[process_task]` implements [`Task`] and adds one [`TaskEntry`] to a link-time table
//! ([`linkme`]'s distributed slice). A child started by re-executing the program (`Spawn`) or
//! forked by the fork server looks its task up in that table by [`Task::NAME`]; nothing has to be
//! registered at run time, so the table is complete before `main` (or the test harness) starts.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::attach::{self, Attachments};
use crate::codec::{self, Encoded};
use crate::error::PanicInfo;

/// A value that can cross a process boundary: it is serialized with serde in one process and
/// deserialized in another.
///
/// Implemented for every `Serialize + DeserializeOwned + Send + 'static` type; you never implement
/// it yourself. The arguments and the return value of a [`process_task`](crate::process_task)
/// must be `ProcessValue`s.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot cross a process boundary",
    label = "arguments and return values of a process task must be serializable and owned",
    note = "derive `serde::Serialize` and `serde::Deserialize` for `{Self}`, and use owned types (`String`, not `&str`)"
)]
pub trait ProcessValue: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> ProcessValue for T {}

/// A function that can run in a child process.
///
/// You do not implement this trait by hand: `#[process_task]` implements it for the value it
/// makes of your function (or for your struct, in the "subclass `Process`" style). It is public so
/// that code can be generic over tasks, as [`Process::builder`](crate::Process::builder) and the
/// pool are.
pub trait Task: ProcessValue {
    /// The arguments: `()` for none, the type itself for one, a tuple for several.
    type Args: ProcessValue;
    /// What the task returns.
    type Output: ProcessValue;
    /// The stable name the task is registered under: the module path and the function name,
    /// such as `my_crate::jobs::add`.
    const NAME: &'static str;

    /// Whether the task value encodes to nothing, as the one `#[process_task]` makes of a `fn`
    /// does: a call `(task, args)` then encodes as its arguments alone, the same bytes, without
    /// the tuple around them (two nanoseconds of an item of a few bytes, on each side).
    #[doc(hidden)]
    const STATELESS: bool = false;

    /// Runs the task in the calling process.
    fn run(self, args: Self::Args) -> Self::Output;
}

/// One row of the task table: a name and the function that runs the task from encoded bytes.
#[doc(hidden)]
#[derive(Debug)]
pub struct TaskEntry {
    pub(crate) name: &'static str,
    /// Decodes `(task, args)` from the bytes and segments (taking the segments it uses), runs
    /// the task, appends the encoded [`Report`] to the buffer, and returns the exit code a child
    /// should end with.
    ///
    /// The segments come by reference, not by value: a pool worker calls this for every item
    /// of a chunk, nearly always with none, and moving an empty `Vec` into the call cost a
    /// stalled load (a 16-byte read of what was just written as 8-byte words) per item.
    ///
    /// The bytes may go on past the call (the next items of a chunk): see [`Encoded`].
    pub(crate) run: fn(Encoded<'_>, &mut Attachments, &mut Vec<u8>, &mut Attachments) -> i32,
}

/// What running a task from its encoded form produced: the encoded report for the parent and the
/// exit code the child ends with.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) report: Vec<u8>,
    /// The shared memory the report refers to.
    pub(crate) shared: Attachments,
    pub(crate) exit_code: i32,
}

impl TaskEntry {
    /// Runs the task from its encoded `(task, args)` into a fresh report.
    pub(crate) fn run_to_outcome(&self, payload: &[u8], mut shared: Attachments) -> Outcome {
        let mut report = Vec::new();
        let mut attachments = Vec::new();
        let exit_code = (self.run)(payload.into(), &mut shared, &mut report, &mut attachments);
        Outcome {
            report,
            shared: attachments,
            exit_code,
        }
    }

    /// The table entry of task `T`.
    pub const fn of<T: Task>() -> Self {
        TaskEntry {
            name: T::NAME,
            run: run_encoded::<T>,
        }
    }
}

/// Every task that `#[process_task]` registered in this executable.
#[doc(hidden)]
#[linkme::distributed_slice]
pub static TASKS: [TaskEntry];

/// Why a task could not be found in this executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    Missing,
    Ambiguous,
}

/// Finds the task registered under `name`.
pub(crate) fn lookup(name: &str) -> Result<&'static TaskEntry, Lookup> {
    static INDEX: OnceLock<HashMap<&'static str, Option<&'static TaskEntry>>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut index = HashMap::with_capacity(TASKS.len());
        for entry in TASKS.iter() {
            index
                .entry(entry.name)
                .and_modify(|slot| *slot = None)
                .or_insert(Some(entry));
        }
        index
    });
    match index.get(name) {
        Some(Some(entry)) => Ok(entry),
        Some(None) => Err(Lookup::Ambiguous),
        None => Err(Lookup::Missing),
    }
}

/// What a child sends back to its parent when its task ends.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) enum Report<R> {
    /// The task returned this value.
    Returned(R),
    /// The task panicked.
    Panicked(PanicInfo),
    /// The task never ran, or its value could not be sent: the arguments did not decode, or the
    /// return value did not encode. The text says which.
    Failed(String),
}

/// Whether an encoded [`Report`] is a [`Report::Returned`], without decoding the value.
pub(crate) fn is_returned(report: &[u8]) -> bool {
    codec::variant_index(report) == Some(u32::from(RETURNED))
}

/// Exit code of a child whose task panicked or could not run, as in Python.
pub(crate) const EXIT_FAILURE: i32 = 1;

/// Decodes `(task, args)`, runs the task under `catch_unwind`, and encodes what happened.
fn run_encoded<T: Task>(
    payload: Encoded<'_>,
    shared: &mut Attachments,
    out: &mut Vec<u8>,
    out_shared: &mut Attachments,
) -> i32 {
    let report = match decode_call::<T>(payload, shared) {
        Ok((task, args)) => run_caught(task, args),
        Err(error) => Report::Failed(format!(
            "the arguments of task `{}` did not decode: {error}",
            T::NAME
        )),
    };
    let exit_code = encode_report_attached(&report, out, out_shared);
    if let Report::Returned(value) = report {
        recycle(value);
    }
    exit_code
}

/// `value` as a `Vec<u8>`, if that is its type. Byte vectors are encoded as one byte string, the
/// same bytes bincode writes for them, without one call per byte: what makes large buffers
/// cheap to send.
fn as_byte_vec<V: 'static>(value: &V) -> Option<&Vec<u8>> {
    (value as &dyn Any).downcast_ref::<Vec<u8>>()
}

/// Whether `V` is `Vec<u8>`.
fn is_byte_vec<V: 'static>() -> bool {
    TypeId::of::<V>() == TypeId::of::<Vec<u8>>()
}

/// Done with `value`: if it is a large `Vec<u8>`, its memory is kept to receive the next large
/// one into (see [`spill::recycle`](crate::spill::recycle)).
pub(crate) fn recycle<V: 'static>(mut value: V) {
    if let Some(bytes) = (&mut value as &mut dyn Any).downcast_mut::<Vec<u8>>() {
        crate::spill::recycle(std::mem::take(bytes));
    }
}

/// A `Vec<u8>` as a `V` that is `Vec<u8>`.
fn from_byte_vec<V: 'static>(bytes: Vec<u8>) -> V {
    *(Box::new(bytes) as Box<dyn Any>)
        .downcast::<V>()
        .unwrap_or_else(|_| unreachable!("called only when V is Vec<u8>"))
}

/// Encodes the call `(task, args)` at the end of `out`.
pub(crate) fn encode_call<T: Task>(
    task: &T,
    args: &T::Args,
    out: &mut Vec<u8>,
) -> Result<(), codec::EncodeError> {
    match as_byte_vec(args) {
        Some(bytes) => {
            crate::wire::reserve(out, bytes.len() + 16);
            codec::encode_into(&(task, crate::wire::ByteStr(bytes)), out)
        }
        None if T::STATELESS => codec::encode_into(args, out),
        None => codec::encode_into(&(task, args), out),
    }
}

/// Decodes a call encoded by [`encode_call`].
fn decode_call<T: Task>(
    payload: Encoded<'_>,
    shared: &mut Attachments,
) -> Result<(T, T::Args), codec::DecodeError> {
    if is_byte_vec::<T::Args>() {
        let (task, bytes) =
            attach::decode::<(T, crate::wire::Blob)>(payload.bytes(), std::mem::take(shared))?;
        return Ok((task, from_byte_vec(bytes.0)));
    }
    if shared.is_empty() {
        if T::STATELESS {
            let args = codec::decode_in(payload)?;
            return Ok((stateless_task()?, args));
        }
        return codec::decode_in(payload);
    }
    attach::decode::<(T, T::Args)>(payload.bytes(), std::mem::take(shared))
}

/// The value of a [`Task::STATELESS`] task, which it decodes from nothing.
fn stateless_task<T: Task>() -> Result<T, codec::DecodeError> {
    T::deserialize(serde::de::value::UnitDeserializer::<serde::de::value::Error>::new())
        .map_err(|error| codec::decode_error(error.to_string()))
}

/// Decodes a report encoded by [`encode_report_into`].
///
/// The segments come by reference, taken only if there are any, for the reason given at
/// [`TaskEntry::run`]: a pool decodes a report per item, nearly always with none.
pub(crate) fn decode_report<R: serde::de::DeserializeOwned + 'static>(
    report: Encoded<'_>,
    shared: &mut Attachments,
) -> Result<Report<R>, codec::DecodeError> {
    let bytes = report.bytes();
    if is_byte_vec::<R>() {
        return Ok(
            match attach::decode::<Report<crate::wire::Blob>>(bytes, std::mem::take(shared))? {
                Report::Returned(bytes) => Report::Returned(from_byte_vec(bytes.0)),
                Report::Panicked(info) => Report::Panicked(info),
                Report::Failed(reason) => Report::Failed(reason),
            },
        );
    }
    if shared.is_empty() {
        // The common case, without the enum's Deserialize.
        if let Some(value) = codec::decode_variant::<R>(RETURNED, report) {
            return value.map(Report::Returned);
        }
    }
    attach::decode::<Report<R>>(bytes, std::mem::take(shared))
}

/// Why a report holds no value, as both a process's `join` and a pool's result say it (each in
/// its own error type, through `From`).
#[derive(Debug)]
pub(crate) enum NoValue {
    Panicked(PanicInfo),
    Failed(String),
    /// The report did not decode as a report of `type_name`.
    Decode {
        type_name: &'static str,
        len: usize,
        source: codec::DecodeError,
    },
}

/// Decodes a report into the task's value, or why there is none.
pub(crate) fn decode_value<R: serde::de::DeserializeOwned + 'static>(
    report: Encoded<'_>,
    shared: &mut Attachments,
) -> Result<R, NoValue> {
    match decode_report::<R>(report, shared) {
        Ok(Report::Returned(value)) => Ok(value),
        Ok(Report::Panicked(info)) => Err(NoValue::Panicked(info)),
        Ok(Report::Failed(reason)) => Err(NoValue::Failed(reason)),
        Err(source) => Err(NoValue::Decode {
            type_name: std::any::type_name::<R>(),
            len: report.len(),
            source,
        }),
    }
}

/// The variant index of [`Report::Returned`].
const RETURNED: u8 = 0;

/// Runs `task` in this process, turning a panic into [`Report::Panicked`].
pub(crate) fn run_caught<T: Task>(task: T, args: T::Args) -> Report<T::Output> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.run(args))) {
        Ok(value) => Report::Returned(value),
        Err(payload) => Report::Panicked(crate::panic::take_panic_info(payload.as_ref())),
    }
}

/// Encodes a report, falling back to a [`Report::Failed`] when the returned value does not
/// encode (a hand-written `Serialize` may fail).
pub(crate) fn encode_report<R: Serialize + 'static>(report: &Report<R>) -> Outcome {
    let mut bytes = Vec::new();
    let mut shared = Vec::new();
    let exit_code = encode_report_attached(report, &mut bytes, &mut shared);
    Outcome {
        report: bytes,
        shared,
        exit_code,
    }
}

/// [`encode_report_into`], gathering the report's attachments into `out_shared`. A value with
/// more than a message can carry becomes a [`Report::Failed`] that says so.
#[inline]
pub(crate) fn encode_report_attached<R: Serialize + 'static>(
    report: &Report<R>,
    out: &mut Vec<u8>,
    out_shared: &mut Attachments,
) -> i32 {
    let (start, attached) = (out.len(), out_shared.len());
    let exit_code = attach::collecting_into(out_shared, || encode_report_into(report, out));
    match attach::too_many(out_shared.len() - attached) {
        None => exit_code,
        Some(reason) => {
            out.truncate(start);
            out_shared.truncate(attached);
            encode_report_into::<()>(
                &Report::Failed(format!("the return value cannot be sent: {reason}")),
                out,
            )
        }
    }
}

/// [`encode_report`] at the end of `out`; returns the exit code.
#[inline]
pub(crate) fn encode_report_into<R: Serialize + 'static>(
    report: &Report<R>,
    out: &mut Vec<u8>,
) -> i32 {
    let start = out.len();
    let encoded = match report {
        Report::Returned(value) => match as_byte_vec(value) {
            Some(bytes) => {
                crate::wire::reserve(out, bytes.len() + 16);
                codec::encode_into(&Report::Returned(crate::wire::ByteStr(bytes)), out)
            }
            None => codec::encode_variant_into(RETURNED, value, out),
        },
        _ => codec::encode_into(report, out),
    };
    match encoded {
        Ok(()) => match report {
            Report::Returned(_) => 0,
            Report::Panicked(_) | Report::Failed(_) => EXIT_FAILURE,
        },
        Err(error) => {
            out.truncate(start);
            let failed: Report<()> =
                Report::Failed(format!("the return value did not encode: {error}"));
            let _ = codec::encode_into(&failed, out);
            EXIT_FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task whose argument and result are bytes, to exercise the byte-vector path.
    #[crate::process_task(crate = crate)]
    fn bytes_back(bytes: Vec<u8>) -> Vec<u8> {
        bytes
    }

    #[test]
    fn reports_encode_as_the_enum_would() {
        fn check<R>(value: R)
        where
            R: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug + 'static,
        {
            let report = Report::Returned(value);
            let mut fast = Vec::new();
            assert_eq!(encode_report_into(&report, &mut fast), 0);
            assert_eq!(fast, codec::encode(&report).unwrap());
            let Report::Returned(value) = report else {
                unreachable!()
            };
            assert!(
                matches!(decode_report::<R>(fast[..].into(), &mut Vec::new()), Ok(Report::Returned(v)) if v == value)
            );
        }
        check(7_u64);
        check(u64::MAX);
        check(String::from("cwz"));
        check(vec![1_u32, 2, 3]);
        check(());
        // Another variant still decodes through the enum.
        let failed = codec::encode(&Report::<u64>::Failed("no".into())).unwrap();
        assert!(
            matches!(decode_report::<u64>(failed[..].into(), &mut Vec::new()), Ok(Report::Failed(r)) if r == "no")
        );
        // A Returned whose value does not fill the bytes is an error, not a value.
        let mut long = codec::encode(&Report::Returned(7_u64)).unwrap();
        long.push(0);
        assert!(decode_report::<u64>(long[..].into(), &mut Vec::new()).is_err());
    }

    /// A task made from a `fn`, whose value encodes to nothing.
    #[crate::process_task(crate = crate)]
    fn add(a: i64, b: String) -> String {
        format!("{a}{b}")
    }

    /// A task whose value has state: a call carries it.
    #[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
    struct Offset(i64);

    #[crate::process_task(crate = crate)]
    impl Offset {
        fn run(self) -> i64 {
            self.0 + 4
        }
    }

    #[test]
    fn a_call_of_a_stateless_task_encodes_as_its_arguments_alone() {
        const { assert!(<add as Task>::STATELESS && !<Offset as Task>::STATELESS) };
        let args = (5_i64, String::from("cwz"));
        let mut call = Vec::new();
        encode_call(&add, &args, &mut call).unwrap();
        // The same bytes as the tuple, since the task writes none.
        assert_eq!(call, codec::encode(&(add, &args)).unwrap());
        assert_eq!(call, codec::encode(&args).unwrap());
        let (_, back) = decode_call::<add>(call[..].into(), &mut Vec::new()).unwrap();
        assert_eq!(back, args);

        let mut call = Vec::new();
        encode_call(&Offset(3), &(), &mut call).unwrap();
        assert_eq!(call, codec::encode(&(Offset(3), ())).unwrap());
        let (task, ()) = decode_call::<Offset>(call[..].into(), &mut Vec::new()).unwrap();
        assert_eq!(Task::run(task, ()), 7);
    }

    #[test]
    fn byte_vectors_round_trip_inline() {
        let bytes: Vec<u8> = (0..70_000_u32).map(|i| (i % 253) as u8).collect();
        let mut fast = Vec::new();
        encode_call(&bytes_back, &bytes, &mut fast).unwrap();
        // A tag, then the bytes in one piece.
        assert!(fast.len() < bytes.len() + 16, "{}", fast.len());
        let (_, back) = decode_call::<bytes_back>(fast[..].into(), &mut Vec::new()).unwrap();
        assert_eq!(back, bytes);

        let mut report = Vec::new();
        assert_eq!(
            encode_report_into(&Report::Returned(bytes.clone()), &mut report),
            0
        );
        assert!(
            matches!(decode_report::<Vec<u8>>(report[..].into(), &mut Vec::new()), Ok(Report::Returned(back)) if back == bytes)
        );
    }

    #[test]
    fn large_byte_vectors_go_beside_the_bytes_when_attachments_are_collected() {
        let bytes: Vec<u8> = (0..crate::spill::THRESHOLD as u32 + 3)
            .map(|i| (i % 253) as u8)
            .collect();
        let payload = attach::encode_with(|out| encode_call(&bytes_back, &bytes, out)).unwrap();
        assert!(payload.bytes.0.len() < 64, "{}", payload.bytes.0.len());
        assert_eq!(payload.shared.len(), 1);
        let (_, back) =
            decode_call::<bytes_back>(payload.bytes.0[..].into(), &mut { payload.shared }).unwrap();
        assert_eq!(back, bytes);

        let outcome = encode_report(&Report::Returned(bytes.clone()));
        assert_eq!(outcome.shared.len(), 1);
        assert!(
            matches!(decode_report::<Vec<u8>>(outcome.report[..].into(), &mut { outcome.shared }), Ok(Report::Returned(back)) if back == bytes)
        );
        // Without its spill, the report is an error, not a panic.
        let outcome = encode_report(&Report::Returned(bytes));
        assert!(decode_report::<Vec<u8>>(outcome.report[..].into(), &mut Vec::new()).is_err());
    }
}
