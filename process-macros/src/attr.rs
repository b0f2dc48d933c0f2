//! The options of the attribute: `#[process_task(crate = "path", name = "stable::name")]`.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::{LitStr, Path};

/// What the attribute's arguments say.
pub(crate) struct Options {
    /// The path of the runtime crate; `::process_runtime` unless renamed.
    pub(crate) krate: Path,
    /// A registration name that replaces `module_path!()::fn_name`.
    pub(crate) name: Option<LitStr>,
}

/// Parses the attribute's arguments, reporting every unknown or repeated option.
pub(crate) fn parse(args: TokenStream) -> syn::Result<Options> {
    let mut krate: Option<Path> = None;
    let mut name: Option<LitStr> = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            if krate.is_some() {
                return Err(meta.error("`crate` is given twice"));
            }
            let value = meta.value()?;
            krate = Some(if value.peek(LitStr) {
                value.parse::<LitStr>()?.parse()?
            } else {
                value.parse()?
            });
            Ok(())
        } else if meta.path.is_ident("name") {
            if name.is_some() {
                return Err(meta.error("`name` is given twice"));
            }
            let lit: LitStr = meta.value()?.parse()?;
            if lit.value().trim().is_empty() {
                return Err(syn::Error::new(lit.span(), "a task name cannot be empty"));
            }
            name = Some(lit);
            Ok(())
        } else {
            Err(meta.error(format!(
                "unknown option `{}`; expected one of: `crate`, `name`",
                path_text(&meta.path)
            )))
        }
    });
    parser.parse2(args)?;
    Ok(Options {
        krate: krate.unwrap_or_else(|| syn::parse_quote!(::process_runtime)),
        name,
    })
}

fn path_text(path: &Path) -> String {
    path.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}
