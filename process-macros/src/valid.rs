//! The checks: every form SPEC rejects gets one error, at the token that is wrong, with a message
//! that says what to write instead. All problems are reported, not just the first.

use syn::visit::Visit;
use syn::{FnArg, Pat, ReturnType, Signature, Type};

use crate::ast::{FnTask, ImplTask};

/// Collects errors, combining them into one `syn::Error` at the end (serde's `Ctxt`).
#[derive(Default)]
pub(crate) struct Errors(Vec<syn::Error>);

impl Errors {
    fn push(&mut self, span: impl quote::ToTokens, message: impl std::fmt::Display) {
        self.0.push(syn::Error::new_spanned(span, message));
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        let mut errors = self.0.into_iter();
        let Some(mut first) = errors.next() else {
            return Ok(());
        };
        for error in errors {
            first.combine(error);
        }
        Err(first)
    }
}

/// Checks a function task.
pub(crate) fn check_fn(task: &FnTask, errors: &mut Errors) {
    check_signature(&task.sig, errors);
    for input in &task.sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.push(
                receiver,
                "a process task cannot take `self`; to run a struct in a child, put #[process_task] on its `impl` block and name the method `run(self)`",
            ),
            FnArg::Typed(typed) => {
                match &*typed.pat {
                    Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => {}
                    pat => errors.push(
                        pat,
                        "process task arguments must be plain identifiers, such as `name: String`; destructure inside the function instead",
                    ),
                }
                check_type(&typed.ty, errors);
            }
        }
    }
}

/// Checks an `impl` task: an inherent impl with a `fn run(self)` and nothing generic.
pub(crate) fn check_impl(task: &ImplTask, errors: &mut Errors) {
    let item = &task.item;
    if let Some(unsafety) = &item.unsafety {
        errors.push(unsafety, "an `unsafe impl` cannot be a process task");
    }
    if let Some((_, path, _)) = &item.trait_ {
        errors.push(
            path,
            "#[process_task] goes on an inherent impl block (`impl MyProcess { fn run(self) -> R { .. } }`), not on a trait impl",
        );
    }
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.push(
            &item.generics,
            "a process task cannot be generic: a child finds its task by name, and a generic type has no single instance to name",
        );
    }
    check_type(&item.self_ty, errors);
    let Some(run) = task.run() else {
        errors.push(
            &item.self_ty,
            "this impl block has no `fn run(self)`; the task of a #[process_task] impl is its `run` method",
        );
        return;
    };
    check_signature(&run.sig, errors);
    let mut inputs = run.sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(receiver))
            if receiver.reference.is_none() && receiver.colon_token.is_none() => {}
        Some(FnArg::Receiver(receiver)) => errors.push(
            receiver,
            "`run` must take `self` by value: the struct is moved into the child process",
        ),
        Some(other) => errors.push(
            other,
            "`run` must take `self`: the struct is what the child runs",
        ),
        None => errors.push(
            &run.sig.ident,
            "`run` must take `self`: the struct is what the child runs",
        ),
    }
    for extra in inputs {
        errors.push(
            extra,
            "`run` takes no arguments besides `self`: put what the task needs in the struct's fields",
        );
    }
}

/// The checks that a function task and a `run` method share.
fn check_signature(sig: &Signature, errors: &mut Errors) {
    if let Some(asyncness) = &sig.asyncness {
        errors.push(
            asyncness,
            "a process task cannot be `async`; make it a plain `fn` and run an executor inside it if it needs one",
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(
            unsafety,
            "an `unsafe fn` cannot be a process task: starting it would call it without an `unsafe` block",
        );
    }
    if let Some(abi) = &sig.abi {
        errors.push(abi, "a process task cannot have an `extern` ABI; remove it");
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(variadic, "a process task cannot be variadic");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.push(
            &sig.generics,
            "a process task cannot be generic: a child finds its task by name, and a generic function has no single instance to name; use concrete types",
        );
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        check_type(ty, errors);
    }
}

/// Types that cannot cross a process boundary and can be recognised without type checking:
/// `impl Trait` (no single concrete type to decode) and borrowed types (nothing to borrow from
/// in another process). Everything else is checked by the compiler against `ProcessValue`.
fn check_type(ty: &Type, errors: &mut Errors) {
    struct Finder<'e> {
        errors: &'e mut Errors,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_type_impl_trait(&mut self, ty: &'ast syn::TypeImplTrait) {
            self.errors.push(
                ty,
                "`impl Trait` cannot cross a process boundary: the child needs one concrete type to decode; name the type",
            );
        }
        fn visit_type_reference(&mut self, ty: &'ast syn::TypeReference) {
            self.errors.push(
                ty,
                "a process task cannot take or return a reference: nothing can be borrowed across a process boundary; use an owned type such as `String` or `Vec<T>`",
            );
        }
        fn visit_type_bare_fn(&mut self, ty: &'ast syn::TypeBareFn) {
            self.errors.push(
                ty,
                "a function pointer cannot cross a process boundary: its address means nothing in another process; pass a #[process_task] instead",
            );
        }
        fn visit_type_trait_object(&mut self, ty: &'ast syn::TypeTraitObject) {
            self.errors.push(
                ty,
                "a trait object cannot cross a process boundary: the child needs one concrete type to decode; name the type",
            );
        }
    }
    Finder { errors }.visit_type(ty);
}
