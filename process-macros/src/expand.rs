//! Code generation. The expansion stays short: it names the runtime only through
//! `<crate>::__private` and `<crate>::{Task, Process, SpawnError}`, and everything it defines
//! besides the user-facing struct and methods sits in a `const _: () = { .. };` block.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, Item, LitStr, ReturnType, Type};

use crate::ast::{FnTask, ImplTask, Input};
use crate::attr::{self, Options};
use crate::valid::{self, Errors};

/// The whole pipeline: options, item, checks, code. On any error the user's item is emitted
/// unchanged beside the errors, so that the rest of the crate still type-checks and the only
/// errors shown are ours.
pub(crate) fn process_task(args: TokenStream, input: TokenStream) -> TokenStream {
    let item: Item = match syn::parse2(input.clone()) {
        Ok(item) => item,
        Err(error) => return with_error(error, input),
    };
    let options = attr::parse(args);
    let input = match Input::parse(item) {
        Ok(input) => input,
        Err((error, item)) => return with_error(combine(options.err(), error), quote!(#item)),
    };
    let mut errors = Errors::default();
    match &input {
        Input::Fn(task) => valid::check_fn(task, &mut errors),
        Input::Impl(task) => valid::check_impl(task, &mut errors),
    }
    let checked = match (options, errors.finish()) {
        (Ok(options), Ok(())) => Ok(options),
        (Err(a), Err(b)) => Err(combine(Some(a), b)),
        (Err(error), Ok(())) | (Ok(_), Err(error)) => Err(error),
    };
    match checked {
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

fn original(input: &Input) -> TokenStream {
    match input {
        Input::Fn(FnTask {
            attrs,
            vis,
            sig,
            block,
        }) => quote!(#(#attrs)* #vis #sig #block),
        Input::Impl(ImplTask { item }) => quote!(#item),
    }
}

/// The stable name: the option, or `module_path!()::ident`.
fn task_name(name: &Option<LitStr>, ident: &syn::Ident) -> TokenStream {
    match name {
        Some(name) => quote!(#name),
        None => {
            let ident = LitStr::new(&ident.to_string(), ident.span());
            quote!(::core::concat!(::core::module_path!(), "::", #ident))
        }
    }
}

/// The table entry that lets a child find task `ty` by name.
fn registration(krate: &syn::Path, ty: &TokenStream) -> TokenStream {
    quote! {
        #[#krate::__private::linkme::distributed_slice(#krate::__private::TASKS)]
        #[linkme(crate = #krate::__private::linkme)]
        static __PROCESS_TASK: #krate::__private::TaskEntry = #krate::__private::TaskEntry::of::<#ty>();
    }
}

fn is_doc(attr: &Attribute) -> bool {
    attr.path().is_ident("doc")
}

fn is_cfg(attr: &Attribute) -> bool {
    attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr")
}

fn expand_fn(task: &FnTask, options: &Options) -> TokenStream {
    let FnTask {
        attrs,
        vis,
        sig,
        block,
    } = task;
    let krate = &options.krate;
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
    // `Args`: `()` for none, the type for one, a tuple for several. Each type keeps its span, so
    // a type that is not serializable is reported where the user wrote it.
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
    let entry = registration(krate, &quote!(#ident));
    let output_span = match &sig.output {
        ReturnType::Default => ident.span(),
        ReturnType::Type(_, ty) => ty.span(),
    };
    let output_check = quote_spanned!(output_span=> type Output = #output;);
    let args_check = match args.len() {
        1 => quote_spanned!(types[0].span()=> type Args = #args_ty;),
        _ => quote!(type Args = #args_ty;),
    };
    let inputs = &sig.inputs;
    let call_names = names.iter();
    let unit = format_ident!("{}", ident, span = Span::call_site());
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
                #ident(#(#call_names),*)
            }

            #[doc = #spawn_doc]
            #[allow(clippy::too_many_arguments, dead_code)]
            #vis fn spawn(self, #(#names: #types),*)
                -> ::core::result::Result<#krate::Process<#output>, #krate::SpawnError>
            {
                #krate::Process::builder(self).spawn(#args_pat)
            }
        }

        #(#cfgs)*
        const _: () = {
            #[automatically_derived]
            impl #krate::__private::serde::Serialize for #unit {
                fn serialize<S>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error>
                where
                    S: #krate::__private::serde::Serializer,
                {
                    serializer.serialize_unit()
                }
            }

            #[automatically_derived]
            impl<'de> #krate::__private::serde::Deserialize<'de> for #unit {
                fn deserialize<D>(deserializer: D) -> ::core::result::Result<Self, D::Error>
                where
                    D: #krate::__private::serde::Deserializer<'de>,
                {
                    <() as #krate::__private::serde::Deserialize>::deserialize(deserializer).map(|()| #unit)
                }
            }

            #[automatically_derived]
            impl #krate::Task for #unit {
                #args_check
                #output_check
                const NAME: &'static str = #name;

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
    let krate = &options.krate;
    let self_ty = &item.self_ty;
    let run = task.run().expect("checked by valid::check_impl");
    let output: TokenStream = match &run.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let ident = match &**self_ty {
        Type::Path(path) => path.path.segments.last().map(|s| s.ident.clone()),
        _ => None,
    }
    .unwrap_or_else(|| format_ident!("task"));
    let name = task_name(&options.name, &ident);
    let entry = registration(krate, &quote!(#self_ty));
    let cfgs: Vec<&Attribute> = item.attrs.iter().filter(|a| is_cfg(a)).collect();
    let vis = &run.vis;
    let spawn_doc = format!(
        "Starts this `{ident}` in a child process with the default options, where its `run` \
         method is the task (Python's `start()`); `Process::builder(value)` sets a name, the \
         daemon flag or a start method."
    );
    // The impl of `Task` is spanned at the type, so "cannot cross a process boundary" lands on
    // the struct's name when it is not serializable.
    let task_impl = quote_spanned! {self_ty.span()=>
        #[automatically_derived]
        impl #krate::Task for #self_ty {
            type Args = ();
            type Output = #output;
            const NAME: &'static str = #name;

            fn run(self, (): ()) -> Self::Output {
                <#self_ty>::run(self)
            }
        }
    };
    quote! {
        #item

        #(#cfgs)*
        impl #self_ty {
            #[doc = #spawn_doc]
            #[allow(dead_code)]
            #vis fn spawn(self) -> ::core::result::Result<#krate::Process<#output>, #krate::SpawnError> {
                #krate::Process::builder(self).spawn(())
            }
        }

        #(#cfgs)*
        const _: () = {
            #task_impl
            #entry
        };
    }
}
