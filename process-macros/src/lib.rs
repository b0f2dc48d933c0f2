//! The `#[process_task]` attribute of [`process-runtime`](https://docs.rs/process-runtime).
//!
//! Use it through `process_runtime::process_task` (the runtime re-exports it; depend on the
//! runtime, not on this crate). This crate parses the item, checks it, and generates code that
//! reaches the runtime only through `::process_runtime::__private` and the runtime's public
//! `Task`, `Process` and `SpawnError`.

mod ast;
mod attr;
mod expand;
mod valid;

use proc_macro::TokenStream;

/// Turns a function into a task that can run in a child process.
///
/// ```
/// use process_runtime::prelude::*;
///
/// /// Adds two numbers, possibly in another process.
/// #[process_task]
/// fn add(a: i64, b: i64) -> i64 {
///     a + b
/// }
///
/// assert_eq!(add.spawn(5, 7)?.join()?, 12); // in a child process
/// assert_eq!(add.call(5, 7), 12);           // here
/// # Ok::<(), process_runtime::Error>(())
/// ```
///
/// # What it accepts
///
/// - A free `fn` with zero, one or several arguments, each a plain identifier (`mut` allowed),
///   and any return type, `()` and `Result<T, E>` included. Every argument type and the return
///   type must be a [`ProcessValue`](../process_runtime/trait.ProcessValue.html): serializable
///   with serde, owned, and `Send`.
/// - An inherent `impl` block of a serializable struct with a `fn run(self) -> R`: Python's
///   "subclass `Process` and override `run`" style. The struct's fields are the arguments.
///
/// ```
/// use process_runtime::prelude::*;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Test {
///     sex: String,
/// }
///
/// #[process_task]
/// impl Test {
///     fn run(self) -> String {
///         format!("子进程的性别是{}", self.sex)
///     }
/// }
///
/// assert_eq!(Test { sex: "女".into() }.spawn()?.join()?, "子进程的性别是女");
/// # Ok::<(), process_runtime::Error>(())
/// ```
///
/// # What it rejects
///
/// Each with one compile error at the offending token (the compile-fail tests in `tests/ui`
/// show every message): generic parameters, `async fn`, `unsafe fn`, `extern` ABIs, variadics,
/// `self` receivers on a free function, argument patterns other than identifiers, `impl Trait`,
/// references, trait objects and function pointers in argument or return types, types that are
/// not serializable, and on an `impl`: a missing `run`, `run(&self)`, extra arguments of `run`,
/// trait impls and generic impls. Python's `Process(target=work())` mistake cannot be written:
/// the task and its arguments are given apart.
///
/// # Options
///
/// - `#[process_task(name = "stable::name")]` registers the task under this name instead of
///   `module_path!()::fn_name`, for instance to keep a name stable across a refactoring, or to
///   tell apart two functions of the same name defined inside function bodies of one module.
/// - `#[process_task(crate = path)]` names the runtime crate when it is not `process_runtime`
///   (a renamed dependency, or a crate that re-exports it).
///
/// # The code this expands to
///
/// For `#[process_task] pub fn add(a: i64, b: i64) -> i64 { a + b }`, in crate `my_crate`:
///
/// ```ignore
/// #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
/// pub struct add;
///
/// impl add {
///     /// Runs `add` in this process, as a plain function call.
///     pub fn call(self, a: i64, b: i64) -> i64 {
///         fn add(a: i64, b: i64) -> i64 { a + b } // your function, unchanged
///         add(a, b)
///     }
///     /// Starts `add` in a child process.
///     pub fn spawn(self, a: i64, b: i64) -> Result<Process<i64>, SpawnError> {
///         Process::builder(self).spawn((a, b))
///     }
/// }
///
/// impl Task for add {
///     type Args = (i64, i64); // `()` for no argument, the type itself for one
///     type Output = i64;
///     const NAME: &'static str = "my_crate::add";
///     fn run(self, (a, b): (i64, i64)) -> i64 { self.call(a, b) }
/// }
///
/// // Also, inside a `const _: () = { .. };` block: serde impls for the unit struct (it
/// // serializes to nothing), a compile-time check that each argument and the return type is a
/// // `ProcessValue` (its error points at the type you wrote), and a row in the runtime's
/// // link-time task table under `NAME`, which is how a re-executed child or the fork server
/// // finds the task.
/// ```
///
/// For an `impl` block the struct itself implements `Task` with `Args = ()`, and gains a
/// `spawn(self)` method; your `impl` is emitted unchanged.
#[proc_macro_attribute]
pub fn process_task(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::process_task(args.into(), input.into()).into()
}
