//! The checks: every form SPEC rejects gets one error, at the token that is wrong, with a message
//! that says what to write instead. All problems are reported, not just the first.

use syn::ext::IdentExt;
use syn::visit::Visit;
use syn::{FnArg, Pat, ReturnType, Signature, Type};

use crate::ast::{FnTask, ImplTask};

/// Collects errors, combining them into one `syn::Error` at the end (serde's `Ctxt`).
#[derive(Default)]
pub(crate) struct Errors {
    errors: Vec<syn::Error>,
    left_to_rustc: bool,
}

impl Errors {
    fn push(&mut self, span: impl quote::ToTokens, message: impl std::fmt::Display) {
        self.errors.push(syn::Error::new_spanned(span, message));
    }

    /// Notes a mistake that rustc reports by itself, clearly and at the right token, in the
    /// user's item as written: the item is then emitted unchanged, and nothing is added to it.
    fn leave_to_rustc(&mut self) {
        self.left_to_rustc = true;
    }

    /// Whether the item has a mistake that rustc reports in the item as written.
    pub(crate) fn left_to_rustc(&self) -> bool {
        self.left_to_rustc
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        let mut errors = self.errors.into_iter();
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
    check_attrs(&task.attrs, errors);
    check_signature(&task.sig, errors);
    for input in &task.sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.push(
                receiver,
                "a process task cannot take `self`; to run a struct in a child, put #[process_task] on its `impl` block and name the method `run(self)`",
            ),
            FnArg::Typed(typed) => {
                match &*typed.pat {
                    Pat::Ident(pat) if pat.ident.unraw() == task.sig.ident.unraw() => errors.push(
                        &pat.ident,
                        format_args!(
                            "an argument cannot have the name of its task: `{0}` is the task's unit struct, so this pattern would match it instead of binding the argument; rename the argument",
                            pat.ident.unraw()
                        ),
                    ),
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

/// The error of an impl block without `fn run`, at its type.
pub(crate) const NO_RUN: &str =
    "this impl block has no `fn run(self)`; the task of a #[process_task] impl is its `run` method";

/// Checks an `impl` task: an inherent impl with a `fn run(self)` and nothing generic.
pub(crate) fn check_impl(task: &ImplTask, errors: &mut Errors) {
    let item = &task.item;
    check_attrs(&item.attrs, errors);
    // rustc rejects an `unsafe` inherent impl by itself; an `unsafe` trait impl gets the error
    // about trait impls below.
    if item.unsafety.is_some() && item.trait_.is_none() {
        errors.leave_to_rustc();
    }
    if let Some((_, path, _)) = &item.trait_ {
        errors.push(
            path,
            "#[process_task] goes on an inherent impl block (`impl MyProcess { fn run(self) -> R { .. } }`), not on a trait impl",
        );
    }
    check_generics(
        &item.generics,
        "a process task cannot be generic: a child finds its task by name, and a generic type has no single instance to name; put #[process_task] on an impl for a concrete type, such as `impl Worker<u32>`",
        errors,
    );
    check_type(&item.self_ty, errors);
    let Some(run) = task.run() else {
        errors.push(&item.self_ty, NO_RUN);
        return;
    };
    check_signature(&run.sig, errors);
    let mut inputs = run.sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(receiver))
            if receiver.reference.is_none() && is_self(&receiver.ty) => {}
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

/// The attributes left on the item: a second `#[process_task]` would expand the task twice.
fn check_attrs(attrs: &[syn::Attribute], errors: &mut Errors) {
    for attr in attrs {
        if attr
            .path()
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "process_task")
        {
            errors.push(attr, "#[process_task] is given twice; remove one");
        }
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
    // A variadic function is necessarily `unsafe extern "C"`: one error says all three.
    if let Some(variadic) = &sig.variadic {
        errors.push(
            variadic,
            "a process task cannot be variadic; make it a plain `fn` (not `unsafe`, not `extern`) that takes a `Vec` instead",
        );
    } else {
        if let Some(unsafety) = &sig.unsafety {
            errors.push(
                unsafety,
                "an `unsafe fn` cannot be a process task: starting it would call it without an `unsafe` block; make it a safe `fn` with an `unsafe` block inside",
            );
        }
        if let Some(abi) = &sig.abi {
            errors.push(abi, "a process task cannot have an `extern` ABI; remove it");
        }
    }
    check_generics(
        &sig.generics,
        "a process task cannot be generic: a child finds its task by name, and a generic function has no single instance to name; use concrete types",
        errors,
    );
    if let ReturnType::Type(_, ty) = &sig.output {
        check_type(ty, errors);
    }
}

/// Generic parameters or a where clause: one error at the parameters, or at the where clause when
/// there are none. Lifetime parameters alone get their own message, since the fix differs.
fn check_generics(generics: &syn::Generics, message: &str, errors: &mut Errors) {
    if !generics.params.is_empty() {
        let only_lifetimes = generics
            .params
            .iter()
            .all(|param| matches!(param, syn::GenericParam::Lifetime(_)));
        if only_lifetimes {
            errors.push(
                generics,
                "a process task cannot have lifetime parameters: its arguments and its return value are owned values that cross a process boundary; remove them and use owned types",
            );
        } else {
            errors.push(generics, message);
        }
    } else if let Some(where_clause) = &generics.where_clause {
        errors.push(
            where_clause,
            "a process task cannot have a where clause: it has no generic parameters to constrain; remove it",
        );
    }
}

/// The type of a `self` receiver without reference: `self`, `mut self` and `self: Self` are `Self`.
fn is_self(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.qself.is_none() && path.path.is_ident("Self"))
}

/// Types that cannot cross a process boundary and can be recognised without type checking:
/// `impl Trait` and trait objects (no single concrete type to decode), borrowed types (nothing to
/// borrow from in another process), function pointers and `!`. Everything else is checked by the
/// compiler against `ProcessValue` (see `expand::value_checks`).
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
        // "the placeholder `_` is not allowed within types on item signatures": rustc says it
        // once for the user's item, but once per generated use of the type for the expansion.
        fn visit_type_infer(&mut self, _: &'ast syn::TypeInfer) {
            self.errors.leave_to_rustc();
        }
        fn visit_type_never(&mut self, ty: &'ast syn::TypeNever) {
            self.errors.push(
                ty,
                "a process task cannot use `!`: its return value is what the parent receives from `join`; return `()` instead",
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
