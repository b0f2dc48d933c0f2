//! Code generation. The expansion stays short. A function task becomes its unit struct and an
//! inherent `call`, which keeps the original function inside it; everything else sits in one
//! `const _: () = { .. };` block: a single `use` of the runtime (see [`runtime_imports`]), the
//! inherent `spawn`, the checks that the types can cross a process boundary (see
//! [`value_checks`]), the impls of `Serialize`, `Deserialize` and `Task`, and the registration.
//! Generated code reaches the runtime only through `Task`, `Process`, `SpawnError`,
//! `ProcessValue` and `__private`.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::{Attribute, Item, LitStr, ReturnType, Type};

use crate::ast::{FnTask, ImplTask, Input};
use crate::attr::{self, Options};
use crate::valid::{self, Errors};

/// The whole pipeline: options, item, checks, code. On any error the user's item is emitted
/// unchanged beside the errors, so that the rest of the crate still type-checks and the only
/// errors shown are ours.
pub(crate) fn process_task(args: TokenStream, tokens: TokenStream) -> TokenStream {
    let item: Item = match syn::parse2(tokens.clone()) {
        Ok(item) => item,
        Err(error) => return with_error(error, tokens),
    };
    let options = attr::parse(args);
    let input = match Input::parse(item) {
        Ok(input) => input,
        Err(error) => return with_error(combine(options.err(), error), tokens),
    };
    let mut errors = Errors::default();
    match &input {
        Input::Fn(task) => valid::check_fn(task, &mut errors),
        Input::Impl(task) => valid::check_impl(task, &mut errors),
    }
    let left_to_rustc = errors.left_to_rustc();
    let checked = match (options, errors.finish()) {
        (Ok(options), Ok(())) => Ok(options),
        (Err(a), Err(b)) => Err(combine(Some(a), b)),
        (Err(error), Ok(())) | (Ok(_), Err(error)) => Err(error),
    };
    match checked {
        Ok(_) if left_to_rustc => original(&input),
        Ok(options) => match &input {
            Input::Fn(task) => expand_fn(task, &options),
            Input::Impl(task) => expand_impl(task, &options),
        },
        Err(error) => with_error(error, original(&input)),
    }
}

fn combine(first: Option<syn::Error>, second: syn::Error) -> syn::Error {
    match first {
        Some(mut first) => {
            first.combine(second);
            first
        }
        None => second,
    }
}

fn with_error(error: syn::Error, item: TokenStream) -> TokenStream {
    let error = error.into_compile_error();
    quote!(#item #error)
}

/// The user's item as written, for when it is rejected; only a variadic `...` is left out, since
/// rustc would reject it again (C-variadic definitions are unstable).
fn original(input: &Input) -> TokenStream {
    match input {
        Input::Fn(FnTask {
            attrs,
            vis,
            sig,
            block,
        }) => {
            let mut sig = sig.clone();
            sig.variadic = None;
            quote!(#(#attrs)* #vis #sig #block)
        }
        Input::Impl(ImplTask { item }) => quote!(#item),
    }
}

/// The stable name: the option, or `module_path!()::ident`.
fn task_name(name: &Option<LitStr>, ident: &syn::Ident) -> TokenStream {
    match name {
        Some(name) => quote!(#name),
        None => {
            let ident = LitStr::new(&ident.unraw().to_string(), ident.span());
            quote!(::core::concat!(::core::module_path!(), "::", #ident))
        }
    }
}

/// The table entry that lets a child find task `ty` by name.
fn registration(ty: &TokenStream) -> TokenStream {
    quote! {
        #[__process_private::linkme::distributed_slice(__process_private::TASKS)]
        #[linkme(crate = __process_private::linkme)]
        static __PROCESS_TASK: __process_private::TaskEntry =
            __process_private::TaskEntry::of::<#ty>();
    }
}

/// The one place where the expansion names the runtime crate: a single `use`, whose names the
/// rest of the expansion goes through. When the `crate = ..` path is wrong, rustc reports this one
/// import, at the path, and stays silent about every use of the names it failed to import.
///
/// `linkme` is imported for the same reason: the registration's `#[linkme(..)]` is consumed by
/// `distributed_slice` before it is ever looked up, but when `distributed_slice` did not resolve
/// it would be reported as an unknown attribute; the failed import gives it a binding.
fn runtime_imports(krate: &syn::Path) -> TokenStream {
    let span =
        token_bounds(&krate.to_token_stream()).map_or_else(Span::call_site, |(first, _)| first);
    quote_spanned! {span=>
        use #krate::{
            Process as __Process, ProcessValue as __ProcessValue, SpawnError as __SpawnError,
            Task as __Task, __private as __process_private,
        };
        #[allow(unused_imports)]
        use __process_private::linkme;
    }
}

fn is_doc(attr: &Attribute) -> bool {
    attr.path().is_ident("doc")
}

fn is_cfg(attr: &Attribute) -> bool {
    attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr")
}

/// The checks that the arguments and the return value can cross a process boundary: helper items
/// for the `const _` block, and one where-clause predicate per distinct type for the `Task` impl
/// (a type written twice, or `-> Self` in an impl task, is checked and reported once).
///
/// Each predicate, `Ty: Checked<{ <Ty as ProcessValue>::CHECKED }>`, holds for a serializable
/// type. For any other type the constant does not type-check, and rustc reports that once, at the
/// user's `Ty`, with the message of the local `ProcessValue` (whose blanket impl is
/// `do_not_recommend`, so the message is ours and not one error per missing serde trait). The
/// failed constant then makes the predicate an error, which rustc treats as satisfied: the bounds
/// of `Task` on `Args` and `Output`, and every use of the impl, raise nothing more. A bound such
/// as `Ty: ProcessValue` on the impl would instead give one error per serde trait, at the impl,
/// and again wherever the task is spawned.
struct ValueChecks {
    items: TokenStream,
    predicates: Vec<TokenStream>,
}

fn value_checks<'a>(types: impl IntoIterator<Item = &'a Type>) -> ValueChecks {
    let items = quote! {
        #[doc(hidden)]
        #[allow(dead_code)]
        mod __process_task {
            #[diagnostic::on_unimplemented(
                message = "`{Self}` cannot cross a process boundary",
                label = "arguments and return values of a process task must be serializable and owned",
                note = "derive `serde::Serialize` and `serde::Deserialize` for `{Self}`; it must also be `Send` and own its data (`String`, not `&str`)"
            )]
            pub(super) trait ProcessValue {
                const CHECKED: bool;
            }

            pub(super) trait Checked<const OK: bool> {}

            impl<T: ?::core::marker::Sized> Checked<true> for T {}
        }

        #[diagnostic::do_not_recommend]
        impl<T: __ProcessValue> __process_task::ProcessValue for T {
            const CHECKED: bool = true;
        }
    };
    let mut seen = std::collections::HashSet::new();
    let predicates = types
        .into_iter()
        .filter(|ty| seen.insert(ty.to_token_stream().to_string()))
        .map(|ty| {
            quote! {
                #ty: __process_task::Checked<{ <#ty as __process_task::ProcessValue>::CHECKED }>
            }
        })
        .collect();
    ValueChecks { items, predicates }
}

fn expand_fn(task: &FnTask, options: &Options) -> TokenStream {
    let FnTask {
        attrs,
        vis,
        sig,
        block,
    } = task;
    let imports = runtime_imports(&options.krate);
    let ident = &sig.ident;
    let docs: Vec<&Attribute> = attrs.iter().filter(|a| is_doc(a)).collect();
    let cfgs: Vec<&Attribute> = attrs.iter().filter(|a| is_cfg(a)).collect();
    let inner_attrs: Vec<&Attribute> = attrs.iter().filter(|a| !is_doc(a)).collect();
    let args = task.args();
    let names: Vec<&syn::Ident> = args.iter().map(|a| a.name).collect();
    let types: Vec<&Type> = args.iter().map(|a| a.ty).collect();
    let output: TokenStream = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    // `Args`: `()` for none, the type for one, a tuple for several.
    let (args_ty, args_pat) = match args.len() {
        1 => (quote!(#(#types)*), quote!(#(#names)*)),
        _ => (quote!((#(#types,)*)), quote!((#(#names,)*))),
    };
    let name = task_name(&options.name, ident);
    let call_doc = format!("Runs `{ident}` in this process, as a plain function call.");
    let spawn_doc = format!(
        "Starts `{ident}` in a child process with the default options and returns its handle; \
         `Process::builder({ident})` sets a name, the daemon flag or a start method."
    );
    let entry = registration(&quote!(#ident));
    let checks = value_checks(types.iter().copied().chain(match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some(&**ty),
    }));
    let check_items = &checks.items;
    let predicates = &checks.predicates;
    // The associated types are spanned at what the user wrote, so that an error about them, such
    // as "private type in public interface", points there: the type of the one argument, or the
    // parenthesized arguments.
    let args_item = match args.len() {
        1 => spanned_assoc_type("Args", &args_ty, token_bounds(&args_ty)),
        _ => {
            let parens = sig.paren_token.span;
            spanned_assoc_type("Args", &args_ty, Some((parens.open(), parens.close())))
        }
    };
    let output_item = spanned_assoc_type("Output", &output, token_bounds(&output));
    let inputs = &sig.inputs;
    let mut unit = ident.clone();
    unit.set_span(Span::call_site());
    quote! {
        #(#docs)*
        #(#cfgs)*
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        #vis struct #ident;

        #(#cfgs)*
        impl #ident {
            #[doc = #call_doc]
            #[allow(clippy::too_many_arguments, clippy::needless_pass_by_value, dead_code, unused_mut)]
            #vis fn call(self, #inputs) -> #output {
                #(#inner_attrs)*
                fn #ident(#inputs) -> #output #block
                #ident(#(#names),*)
            }
        }

        #(#cfgs)*
        const _: () = {
            #imports
            impl #ident {
                #[doc = #spawn_doc]
                #[allow(clippy::too_many_arguments, dead_code)]
                #vis fn spawn(self, #(#names: #types),*)
                    -> ::core::result::Result<__Process<#output>, __SpawnError>
                {
                    __Process::builder(self).spawn(#args_pat)
                }
            }

            #check_items

            #[automatically_derived]
            impl __process_private::serde::Serialize for #unit {
                fn serialize<S>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error>
                where
                    S: __process_private::serde::Serializer,
                {
                    serializer.serialize_unit()
                }
            }

            #[automatically_derived]
            impl<'de> __process_private::serde::Deserialize<'de> for #unit {
                fn deserialize<D>(deserializer: D) -> ::core::result::Result<Self, D::Error>
                where
                    D: __process_private::serde::Deserializer<'de>,
                {
                    <() as __process_private::serde::Deserialize>::deserialize(deserializer).map(|()| #unit)
                }
            }

            #[automatically_derived]
            impl __Task for #unit
            where
                #(#predicates,)*
            {
                #args_item
                #output_item
                const NAME: &'static str = #name;
                // Its `Serialize` above writes nothing.
                const STATELESS: bool = true;

                #[allow(unused_parens)]
                fn run(self, #args_pat: Self::Args) -> Self::Output {
                    self.call(#(#names),*)
                }
            }

            #entry
        };
    }
}

fn expand_impl(task: &ImplTask, options: &Options) -> TokenStream {
    let item = &task.item;
    let imports = runtime_imports(&options.krate);
    let self_ty = &item.self_ty;
    // `valid::check_impl` rejects an impl block without `run`, so this is its error again rather
    // than a panic that cannot happen.
    let Some(run) = task.run() else {
        return with_error(
            syn::Error::new_spanned(self_ty, valid::NO_RUN),
            quote!(#item),
        );
    };
    let output: TokenStream = match &run.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => replace_self(ty.to_token_stream(), &self_ty.to_token_stream()),
    };
    let ident = match &**self_ty {
        Type::Path(path) => path.path.segments.last().map(|s| s.ident.unraw()),
        _ => None,
    }
    .unwrap_or_else(|| format_ident!("task"));
    let name = task_name(&options.name, &ident);
    let entry = registration(&quote!(#self_ty));
    let cfgs: Vec<&Attribute> = item.attrs.iter().filter(|a| is_cfg(a)).collect();
    let vis = &run.vis;
    let spawn_doc = format!(
        "Starts this `{ident}` in a child process with the default options, where its `run` \
         method is the task (Python's `start()`); `Process::builder(value)` sets a name, the \
         daemon flag or a start method."
    );
    // `Self` means the struct in the `run` method, and nothing in the `const _` block's checks.
    let output_ty: Option<Type> = match &run.sig.output {
        ReturnType::Default => None,
        ReturnType::Type(..) => syn::parse2(output.clone()).ok(),
    };
    let checks = value_checks(std::iter::once(&**self_ty).chain(output_ty.as_ref()));
    let check_items = &checks.items;
    let predicates = &checks.predicates;
    let output_item = spanned_assoc_type("Output", &output, token_bounds(&output));
    quote! {
        #item

        #(#cfgs)*
        const _: () = {
            #imports
            impl #self_ty {
                #[doc = #spawn_doc]
                #[allow(dead_code)]
                #vis fn spawn(self) -> ::core::result::Result<__Process<#output>, __SpawnError> {
                    __Process::builder(self).spawn(())
                }
            }

            #check_items

            #[automatically_derived]
            impl __Task for #self_ty
            where
                #(#predicates,)*
            {
                type Args = ();
                #output_item
                const NAME: &'static str = #name;

                fn run(self, (): ()) -> Self::Output {
                    <#self_ty>::run(self)
                }
            }

            #entry
        };
    }
}

/// `tokens` with every `Self` replaced by `self_ty`.
fn replace_self(tokens: TokenStream, self_ty: &TokenStream) -> TokenStream {
    tokens
        .into_iter()
        .map(|token| match token {
            TokenTree::Ident(ident) if ident == "Self" => respan(self_ty.clone(), ident.span()),
            TokenTree::Group(group) => {
                let mut new = Group::new(group.delimiter(), replace_self(group.stream(), self_ty));
                new.set_span(group.span());
                TokenTree::Group(new).into_token_stream()
            }
            other => other.into_token_stream(),
        })
        .collect()
}

/// `tokens` with every span set to `span`, so that an error about them points there.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut new = Group::new(group.delimiter(), respan(group.stream(), span));
                new.set_span(span);
                token = TokenTree::Group(new);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

/// `type name = ty;`, spanned from `span.0` to `span.1`: rustc reports errors about an associated
/// type at its `type name`.
fn spanned_assoc_type(name: &str, ty: &TokenStream, span: Option<(Span, Span)>) -> TokenStream {
    let (first, last) = span.unwrap_or_else(|| (Span::call_site(), Span::call_site()));
    let type_token = syn::Token![type](first);
    let name = proc_macro2::Ident::new(name, last);
    let eq_token = syn::Token![=](last);
    let semi_token = syn::Token![;](last);
    quote!(#type_token #name #eq_token #ty #semi_token)
}

/// The spans of the first and the last token of `tokens`.
fn token_bounds(tokens: &TokenStream) -> Option<(Span, Span)> {
    let mut iter = tokens.clone().into_iter();
    let first = iter.next()?;
    let last = iter.last().unwrap_or_else(|| first.clone());
    let first = match &first {
        TokenTree::Group(group) => group.span_open(),
        other => other.span(),
    };
    let last = match &last {
        TokenTree::Group(group) => group.span_close(),
        other => other.span(),
    };
    Some((first, last))
}
