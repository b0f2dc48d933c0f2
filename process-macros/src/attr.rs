//! The options of the attribute: `#[process_task(crate = "path", name = "stable::name")]`.

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, LitStr, Path, Token};

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
                return Err(meta.error("`crate` is given twice; keep one"));
            }
            let value = value_of(&meta, "crate = process_runtime")?;
            krate = Some(if value.peek(LitStr) {
                let lit: LitStr = value.parse()?;
                lit.parse().map_err(|_| {
                    syn::Error::new(
                        lit.span(),
                        "`crate` takes the path of the runtime crate, such as `crate = process_runtime`",
                    )
                })?
            } else {
                Path::parse_mod_style(value).map_err(|error| {
                    syn::Error::new(
                        error.span(),
                        "`crate` takes the path of the runtime crate, such as `crate = process_runtime`",
                    )
                })?
            });
            Ok(())
        } else if meta.path.is_ident("name") {
            if name.is_some() {
                return Err(meta.error("`name` is given twice; keep one"));
            }
            let value = value_of(&meta, "name = \"my_crate::task\"")?;
            if !value.peek(LitStr) {
                const MESSAGE: &str =
                    "`name` takes a string literal, such as `name = \"my_crate::task\"`";
                return Err(match value.parse::<Expr>() {
                    Ok(expr) => syn::Error::new_spanned(expr, MESSAGE),
                    Err(error) => syn::Error::new(error.span(), MESSAGE),
                });
            }
            let lit: LitStr = value.parse()?;
            if lit.value().trim().is_empty() {
                return Err(syn::Error::new(
                    lit.span(),
                    "a task name cannot be empty; leave `name` out to use the module path and the function name",
                ));
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

/// The value after `option =`; an option written without one is an error at its name.
fn value_of<'a>(meta: &ParseNestedMeta<'a>, example: &str) -> syn::Result<ParseStream<'a>> {
    if !meta.input.peek(Token![=]) {
        return Err(meta.error(format_args!(
            "`{}` needs a value, such as `{example}`",
            path_text(&meta.path)
        )));
    }
    meta.value()
}

fn path_text(path: &Path) -> String {
    path.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}
