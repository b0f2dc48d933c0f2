//! The two forms the attribute accepts, parsed from syn into what the expansion needs. Every
//! part keeps its original tokens, so that errors and generated code point at the user's source.

use syn::{
    Attribute, Block, FnArg, ForeignItemFn, Ident, ImplItemFn, Item, ItemFn, ItemImpl, Pat,
    Signature, Type, Visibility,
};

/// The item under the attribute.
pub(crate) enum Input {
    /// `fn task(a: A, b: B) -> R { .. }`
    Fn(FnTask),
    /// `impl MyProcess { fn run(self) -> R { .. } }`
    Impl(ImplTask),
}

pub(crate) struct FnTask {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) block: Box<Block>,
}

pub(crate) struct ImplTask {
    pub(crate) item: ItemImpl,
}

/// One argument of a function task: `name: Type`.
pub(crate) struct Arg<'a> {
    pub(crate) name: &'a Ident,
    pub(crate) ty: &'a Type,
}

impl Input {
    /// Recognises the item. Anything but a function or an impl block is one error.
    pub(crate) fn parse(item: Item) -> syn::Result<Self> {
        match item {
            Item::Fn(ItemFn {
                attrs,
                vis,
                sig,
                block,
            }) => Ok(Input::Fn(FnTask {
                attrs,
                vis,
                sig,
                block,
            })),
            Item::Impl(item) => Ok(Input::Impl(ImplTask { item })),
            // A `fn` without a body, as in a trait or an `extern` block.
            Item::Verbatim(tokens) if syn::parse2::<ForeignItemFn>(tokens.clone()).is_ok() => {
                Err(syn::Error::new_spanned(
                    tokens,
                    "this `fn` has no body; #[process_task] goes on a `fn` with a body, or on an `impl` block whose `fn run(self)` is the task",
                ))
            }
            other => Err(syn::Error::new_spanned(
                item_keyword(&other),
                "#[process_task] goes on a `fn`, or on an `impl` block whose `fn run(self)` is the task",
            )),
        }
    }
}

impl FnTask {
    /// The arguments, when every pattern is a plain identifier (checked by `valid`).
    pub(crate) fn args(&self) -> Vec<Arg<'_>> {
        self.sig
            .inputs
            .iter()
            .filter_map(|input| match input {
                FnArg::Typed(typed) => match &*typed.pat {
                    Pat::Ident(pat) => Some(Arg {
                        name: &pat.ident,
                        ty: &typed.ty,
                    }),
                    _ => None,
                },
                FnArg::Receiver(_) => None,
            })
            .collect()
    }
}

impl ImplTask {
    /// The `fn run` of the impl block.
    pub(crate) fn run(&self) -> Option<&ImplItemFn> {
        self.item.items.iter().find_map(|item| match item {
            syn::ImplItem::Fn(f) if f.sig.ident == "run" => Some(f),
            _ => None,
        })
    }
}

/// The tokens an error about the whole item points at: its leading keyword(s).
fn item_keyword(item: &Item) -> proc_macro2::TokenStream {
    use quote::ToTokens;
    match item {
        Item::Struct(s) => s.struct_token.to_token_stream(),
        Item::Enum(e) => e.enum_token.to_token_stream(),
        Item::Trait(t) => t.trait_token.to_token_stream(),
        Item::Mod(m) => m.mod_token.to_token_stream(),
        Item::Const(c) => c.const_token.to_token_stream(),
        Item::Static(s) => s.static_token.to_token_stream(),
        Item::Type(t) => t.type_token.to_token_stream(),
        Item::Use(u) => u.use_token.to_token_stream(),
        other => other.to_token_stream(),
    }
}
