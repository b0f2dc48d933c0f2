//! The `#[process_task]` attribute of [`process-runtime`](https://docs.rs/process-runtime).
//!
//! Use it through `process_runtime::process_task`; its documentation is there. This crate parses
//! the item, checks it, and generates code that reaches the runtime only through
//! `::process_runtime::__private`.

mod ast;
mod attr;
mod expand;
mod valid;

use proc_macro::TokenStream;

/// Turns a function into a task that can run in a child process. Documented in
/// `process_runtime::process_task`.
#[proc_macro_attribute]
pub fn process_task(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::process_task(args.into(), input.into()).into()
}
