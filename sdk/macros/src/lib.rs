//! The `#[task(...)]` and `#[flow(...)]` attribute macros of `cfgd-sdk`,
//! re-exported as `cfgd_sdk::retry::{task, flow}`: Prefect's decorator
//! syntax over the retry engine in `cfgd_sdk::retry`.
//!
//! # What they generate
//! On `fn name(args) -> Result<T, E>` (async or not), the function keeps
//! its name, visibility and parameters and returns
//! `Result<T, RunError<E>>`: each call is one task (or flow) run whose
//! attempts each run the original body. A companion
//! `name_with_history(args) -> (TaskRun, Result<T, RunError<E>>)`
//! (`FlowRun` for a flow) also returns the run with its state history.
//!
//! - An `async fn` runs on the async engine (`Task::run`, tokio sleeps);
//!   a plain `fn` stays blocking (`Task::run_blocking`, thread sleeps).
//! - Each attempt gets its own clone of every parameter, so parameters
//!   must be `Clone` (pass references to share; references are copied).
//!   A `&self` receiver is allowed; `self`, `mut self` and `&mut self` are
//!   not, since a retried body cannot consume or hold them.
//! - The return type may be any alias of `Result` (`io::Result<T>`,
//!   `anyhow::Result<T>`).
//!
//! - The `Task` (or `Flow`) is built once, on the first call, and shared
//!   by every call after it — so a `jitter_seed` seeds one stream for the
//!   function, not the same draws for every call. When its error type
//!   names `Self` or the function's generics (a static cannot), it is
//!   built per call and shares one jitter stream instead.
//! - Parameter values are expressions resolved where the function is
//!   written, as written: `exponential_backoff(10)` is whichever
//!   `exponential_backoff` is in scope (import `cfgd_sdk::retry::exponential_backoff`).
//!
//! # Parameters
//! `#[task(...)]`: `name = "..."` (default: the function's name),
//! `retries = 2`, `retry_delay_seconds = 5` / `[1, 10, 100]` /
//! `exponential_backoff(10)` (any expression `Task::retry_delay_seconds`
//! accepts; `retry_delay = Duration::from_millis(250)` too),
//! `retry_jitter_factor = 0.5`, `retry_condition_fn = path`,
//! `retry_condition_fn_async = path`, `suggested_delay_fn = path`,
//! `timeout_seconds = 1.5` (or `timeout = Duration…`), `jitter_seed = 7`,
//! and the hooks `on_running`, `on_retry`, `on_failure`, `on_completion` (a
//! path, or a list of paths).
//! `#[flow(...)]`: `name`, `retries`, `retry_delay_seconds` /
//! `retry_delay`, `timeout_seconds` / `timeout`, and the same hooks.
//!
//! Literal values are checked at compile time with Prefect's messages
//! (more than 50 delays, a negative jitter factor); other invalid values
//! panic at the first call with the same message, as Prefect raises at
//! decoration.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Expr, ExprLit, ExprUnary, FnArg, GenericArgument, GenericParam, ItemFn, Lit, MetaNameValue,
    Pat, PathArguments, ReturnType, Token, Type, UnOp,
};

/// Makes a function a retried task. See the [crate docs](crate).
///
/// ```ignore
/// use cfgd_sdk::retry::{exponential_backoff, task};
///
/// #[task(retries = 3, retry_delay_seconds = exponential_backoff(10), retry_jitter_factor = 0.5)]
/// async fn fetch(url: &str) -> Result<String, std::io::Error> {
///     download(url).await
/// }
///
/// let body = fetch("https://example.invalid").await?; // Result<String, RunError<io::Error>>
/// ```
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Task, args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes a function a retried flow. See the [crate docs](crate).
///
/// ```ignore
/// use cfgd_sdk::retry::flow;
///
/// #[flow(retries = 1, retry_delay_seconds = 2)]
/// async fn nightly() -> Result<(), anyhow::Error> {
///     fetch("https://example.invalid").await?;
///     Ok(())
/// }
/// ```
#[proc_macro_attribute]
pub fn flow(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Flow, args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Task,
    Flow,
}

impl Kind {
    fn item(self) -> &'static str {
        match self {
            Kind::Task => "task",
            Kind::Flow => "flow",
        }
    }

    fn keys(self) -> &'static [&'static str] {
        match self {
            Kind::Task => &[
                "name",
                "retries",
                "retry_delay_seconds",
                "retry_delay",
                "retry_jitter_factor",
                "retry_condition_fn",
                "retry_condition_fn_async",
                "suggested_delay_fn",
                "timeout_seconds",
                "timeout",
                "jitter_seed",
                "on_running",
                "on_retry",
                "on_failure",
                "on_completion",
            ],
            Kind::Flow => &[
                "name",
                "retries",
                "retry_delay_seconds",
                "retry_delay",
                "timeout_seconds",
                "timeout",
                "on_running",
                "on_retry",
                "on_failure",
                "on_completion",
            ],
        }
    }
}

fn expand(kind: Kind, args: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let params = Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(args)?;
    let mut func: ItemFn = syn::parse2(item)?;
    let ret = match &func.sig.output {
        ReturnType::Type(_, ty) => (**ty).clone(),
        ReturnType::Default => {
            return Err(syn::Error::new(
                func.sig.span(),
                format!("#[{}] functions must return `Result<T, E>`", kind.item()),
            ));
        }
    };
    let built = builder(kind, &params, &func.sig.ident)?;
    let (receiver, args) = arguments(&mut func)?;

    let is_async = func.sig.asyncness.is_some();
    let name = func.sig.ident.clone();
    let companion = format_ident!("{}_with_history", name);
    let vis = &func.vis;
    let attrs = &func.attrs;
    // The companion shares the function's conditional compilation and lint
    // settings, not its docs or other attributes.
    let shared_attrs = func.attrs.iter().filter(|a| {
        [
            "cfg", "cfg_attr", "allow", "expect", "warn", "deny", "forbid",
        ]
        .iter()
        .any(|name| a.path().is_ident(name))
    });
    let body = &func.block;
    let (retried, error) = retried_type(&ret);
    let run_type = match kind {
        Kind::Task => quote!(::cfgd_sdk::retry::TaskRun),
        Kind::Flow => quote!(::cfgd_sdk::retry::FlowRun),
    };

    let clones = args.iter().map(|a| {
        let (outer, pat) = (&a.outer, &a.pat);
        quote! {
            #[allow(clippy::clone_on_copy, clippy::redundant_clone)]
            let #pat = ::core::clone::Clone::clone(&#outer);
        }
    });
    let attempt = if is_async {
        quote! {
            || {
                #(#clones)*
                ::cfgd_sdk::retry::__private::async_body::<#ret, _>(async move #body)
            }
        }
    } else {
        quote! {
            || -> #ret {
                #(#clones)*
                #body
            }
        }
    };
    let returns_fail =
        kind == Kind::Task && result_args(&ret).is_some_and(|(_, e)| result_fail_arg(e).is_some());
    let (run, dot_await) = match (is_async, returns_fail) {
        (true, false) => (quote!(run_with_history), quote!(.await)),
        (true, true) => (quote!(run_returning), quote!(.await)),
        (false, false) => (quote!(run_blocking_with_history), quote!()),
        (false, true) => (quote!(run_blocking_returning), quote!()),
    };

    let mut main_sig = func.sig.clone();
    main_sig.output = syn::parse_quote!(-> #retried);
    let mut companion_sig = func.sig.clone();
    companion_sig.ident = companion.clone();
    companion_sig.output = syn::parse_quote!(-> (#run_type, #retried));

    let forwarded = args.iter().map(|a| &a.outer);
    let turbofish = turbofish(&func);
    let call = if receiver {
        quote!(Self::#companion #turbofish(self, #(#forwarded),*))
    } else {
        quote!(#companion #turbofish(#(#forwarded),*))
    };
    let runner = runner(kind, &built, &error, &func);
    let doc = format!(
        "Like [`{name}`], also returning the {} run with its state history.",
        kind.item()
    );

    Ok(quote! {
        #(#attrs)*
        #vis #main_sig {
            #call #dot_await .1
        }

        #[doc = #doc]
        #(#shared_attrs)*
        #vis #companion_sig {
            #runner
            __cfgd_runner.#run(#attempt) #dot_await
        }
    })
}

/// The statement binding `__cfgd_runner`: a reference to the task built
/// once in a static, or — when its type or parameters name `Self` or the
/// function's generics, which a static cannot — a task built per call that
/// draws from one static jitter stream.
fn runner(kind: Kind, built: &Built, error: &TokenStream2, func: &ItemFn) -> TokenStream2 {
    let item = kind.item();
    let expr = &built.expr;
    let ty = match kind {
        Kind::Task => quote!(::cfgd_sdk::retry::Task<#error>),
        Kind::Flow => quote!(::cfgd_sdk::retry::Flow),
    };
    let generics: Vec<String> = func
        .sig
        .generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => Some(t.ident.to_string()),
            GenericParam::Const(c) => Some(c.ident.to_string()),
            GenericParam::Lifetime(_) => None,
        })
        .collect();
    let typed = match kind {
        Kind::Task => error.clone(),
        Kind::Flow => quote!(),
    };
    let local = [&typed, expr].iter().any(|t| names_local(t, &generics));
    if !local {
        return quote! {
            static __CFGD_RUNNER: ::std::sync::LazyLock<#ty> = ::std::sync::LazyLock::new(|| {
                ::cfgd_sdk::retry::__private::valid(#item, #expr.build())
            });
            let __cfgd_runner: &#ty = &__CFGD_RUNNER;
        };
    }
    let share = match &built.seed {
        Some(seed) => quote! {
            static __CFGD_JITTER: ::std::sync::LazyLock<::cfgd_sdk::retry::Task<()>> =
                ::std::sync::LazyLock::new(|| ::cfgd_sdk::retry::Task::new("").jitter_seed(#seed));
            let __cfgd_runner = __cfgd_runner.__share_jitter(&*__CFGD_JITTER);
        },
        None => quote!(),
    };
    quote! {
        let __cfgd_runner: #ty = ::cfgd_sdk::retry::__private::valid(#item, #expr.build());
        #share
    }
}

/// Whether `tokens` name `Self`, `impl Trait`, a lifetime other than
/// `'static`, or one of `generics`: what a static's type or initialiser
/// cannot use.
fn names_local(tokens: &TokenStream2, generics: &[String]) -> bool {
    let mut after_quote = false;
    tokens.clone().into_iter().any(|tree| {
        let local = match &tree {
            proc_macro2::TokenTree::Group(g) => names_local(&g.stream(), generics),
            proc_macro2::TokenTree::Ident(i) => {
                let name = i.to_string();
                (after_quote && name != "static")
                    || name == "Self"
                    || name == "impl"
                    || generics.contains(&name)
            }
            _ => false,
        };
        after_quote = matches!(&tree, proc_macro2::TokenTree::Punct(p) if p.as_char() == '\'');
        local
    })
}

/// `Result<T, RunError<E>>` and `E`, spelled out when the return type is
/// written `Result<T, E>` (or `Result<T, Fail<E>>`: a function that may
/// return a Failed state), else through the `TaskOutput` projection
/// (aliases).
fn retried_type(ret: &Type) -> (TokenStream2, TokenStream2) {
    if let Some((t, e)) = result_args(ret) {
        let e = match result_fail_arg(e) {
            Some(inner) => inner,
            None => e,
        };
        return (
            quote!(::core::result::Result<#t, ::cfgd_sdk::retry::RunError<#e>>),
            quote!(#e),
        );
    }
    (
        quote!(<#ret as ::cfgd_sdk::retry::__private::TaskOutput>::Retried),
        quote!(<#ret as ::cfgd_sdk::retry::__private::TaskOutput>::Err),
    )
}

/// `T` and `E` of a type written `Result<T, E>`.
fn result_args(ty: &Type) -> Option<(&Type, &Type)> {
    if let Type::Path(p) = ty
        && p.qself.is_none()
        && let Some(last) = p.path.segments.last()
        && last.ident == "Result"
        && let PathArguments::AngleBracketed(generic) = &last.arguments
        && generic.args.len() == 2
        && let (Some(GenericArgument::Type(t)), Some(GenericArgument::Type(e))) =
            (generic.args.first(), generic.args.last())
    {
        return Some((t, e));
    }
    None
}

/// `E` of a type written `Fail<E>`.
fn result_fail_arg(ty: &Type) -> Option<&Type> {
    if let Type::Path(p) = ty
        && let Some(last) = p.path.segments.last()
        && last.ident == "Fail"
        && let PathArguments::AngleBracketed(generic) = &last.arguments
        && generic.args.len() == 1
        && let Some(GenericArgument::Type(e)) = generic.args.first()
    {
        return Some(e);
    }
    None
}

/// A parameter: the name the generated signature gives it, and the
/// pattern each attempt binds its clone to.
struct Arg {
    outer: syn::Ident,
    pat: Pat,
}

/// Checks the receiver and renames parameters whose pattern is not a plain
/// name; returns whether there is a `&self`.
fn arguments(func: &mut ItemFn) -> syn::Result<(bool, Vec<Arg>)> {
    let mut receiver = false;
    let mut args = Vec::new();
    for (i, input) in func.sig.inputs.iter_mut().enumerate() {
        match input {
            FnArg::Receiver(r) => {
                if r.reference.is_none() || r.mutability.is_some() {
                    return Err(syn::Error::new(
                        r.span(),
                        "a retried function can take `&self`, not `self` or `&mut self`: each attempt must be able to run again",
                    ));
                }
                receiver = true;
            }
            FnArg::Typed(t) => {
                let pat = (*t.pat).clone();
                let outer = match &pat {
                    Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
                        // The outer binding is never mutated; `mut` applies to
                        // each attempt's clone.
                        let ident = p.ident.clone();
                        *t.pat = syn::parse_quote!(#ident);
                        ident
                    }
                    _ => {
                        let ident = format_ident!("__cfgd_arg{}", i);
                        *t.pat = syn::parse_quote!(#ident);
                        ident
                    }
                };
                args.push(Arg { outer, pat });
            }
        }
    }
    Ok((receiver, args))
}

/// `::<T, N>` for the function's type and const parameters, so the
/// forwarding call never depends on inference; nothing when a parameter
/// is `impl Trait` (explicit arguments are not allowed then).
fn turbofish(func: &ItemFn) -> TokenStream2 {
    let has_impl = func.sig.inputs.iter().any(|a| match a {
        FnArg::Typed(t) => quote!(#t).to_string().contains("impl "),
        FnArg::Receiver(_) => false,
    });
    let params: Vec<TokenStream2> = func
        .sig
        .generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => {
                let ident = &t.ident;
                Some(quote!(#ident))
            }
            GenericParam::Const(c) => {
                let ident = &c.ident;
                Some(quote!(#ident))
            }
            GenericParam::Lifetime(_) => None,
        })
        .collect();
    if has_impl || params.is_empty() {
        quote!()
    } else {
        quote!(::<#(#params),*>)
    }
}

/// The builder expression, and the `jitter_seed` if one is given.
struct Built {
    expr: TokenStream2,
    seed: Option<Expr>,
}

/// The `Task::new(..)...` / `Flow::new(..)...` expression. Setters never
/// fail; the expression is checked with `build()` where it is used.
fn builder(
    kind: Kind,
    params: &Punctuated<MetaNameValue, Token![,]>,
    fn_name: &syn::Ident,
) -> syn::Result<Built> {
    let item = kind.item();
    let mut seen: Vec<String> = Vec::new();
    let mut name = {
        let n = fn_name.to_string();
        quote!(#n)
    };
    let mut calls = Vec::new();
    let mut seed = None;
    for param in params {
        let key = param
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        if !kind.keys().contains(&key.as_str()) {
            return Err(syn::Error::new(
                param.path.span(),
                format!(
                    "unknown #[{item}] parameter; expected one of: {}",
                    kind.keys().join(", ")
                ),
            ));
        }
        if seen.contains(&key) {
            return Err(syn::Error::new(
                param.path.span(),
                format!("`{key}` is given twice"),
            ));
        }
        seen.push(key.clone());
        let value = &param.value;
        let method = format_ident!("{}", key);
        match key.as_str() {
            "name" => name = quote!(#value),
            "retries" => {
                if negative(value) {
                    return Err(syn::Error::new(value.span(), "`retries` must be >= 0."));
                }
                calls.push(quote!(.retries(#value)));
            }
            "retry_delay_seconds" | "retry_delay" => {
                check_delays(value)?;
                calls.push(quote!(.#method(#value)));
            }
            "retry_jitter_factor" => {
                if negative(value) {
                    return Err(syn::Error::new(
                        value.span(),
                        "`retry_jitter_factor` must be >= 0.",
                    ));
                }
                calls.push(quote!(.retry_jitter_factor(#value)));
            }
            "timeout_seconds" => {
                if negative(value) {
                    return Err(syn::Error::new(
                        value.span(),
                        "`timeout_seconds` must be >= 0.",
                    ));
                }
                calls.push(quote!(.timeout_seconds(#value)));
            }
            "jitter_seed" => {
                seed = Some(value.clone());
                calls.push(quote!(.jitter_seed(#value)));
            }
            "on_running" | "on_retry" | "on_failure" | "on_completion" => match value {
                Expr::Array(hooks) => {
                    for hook in &hooks.elems {
                        calls.push(quote!(.#method(#hook)));
                    }
                }
                hook => calls.push(quote!(.#method(#hook))),
            },
            _ => calls.push(quote!(.#method(#value))),
        }
    }
    let ty = match kind {
        Kind::Task => quote!(::cfgd_sdk::retry::Task),
        Kind::Flow => quote!(::cfgd_sdk::retry::Flow),
    };
    Ok(Built {
        expr: quote!(#ty::new(#name) #(#calls)*),
        seed,
    })
}

/// Whether `value` is a negative numeric literal (`-1`, `-0.5`), written
/// as a minus and a literal or as one negative literal token.
fn negative(value: &Expr) -> bool {
    match value {
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => literal_value(expr).is_some_and(|v| v > 0.0),
        other => literal_value(other).is_some_and(|v| v < 0.0),
    }
}

/// The value of a numeric literal.
fn literal_value(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_digits().parse().ok(),
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) => f.base10_digits().parse().ok(),
        _ => None,
    }
}

/// Compile-time checks of a literal delay list.
fn check_delays(value: &Expr) -> syn::Result<()> {
    let Expr::Array(list) = value else {
        if negative(value) {
            return Err(syn::Error::new(
                value.span(),
                "every delay in `retry_delay_seconds` must be >= 0",
            ));
        }
        return Ok(());
    };
    if list.elems.len() > 50 {
        return Err(syn::Error::new(
            value.span(),
            "Can not configure more than 50 retry delays per task.",
        ));
    }
    if let Some(bad) = list.elems.iter().find(|e| negative(e)) {
        return Err(syn::Error::new(
            bad.span(),
            "every delay in `retry_delay_seconds` must be >= 0",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(kind: Kind, args: &str, item: &str) -> Result<String, String> {
        expand(kind, args.parse().unwrap(), item.parse().unwrap())
            .map(|t| t.to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn literal_errors_are_compile_errors_with_prefects_messages() {
        let item = "fn f() -> Result<(), String> { Ok(()) }";
        let many = format!("retry_delay_seconds = [{}]", vec!["1"; 51].join(", "));
        assert_eq!(
            expand_str(Kind::Task, &many, item).unwrap_err(),
            "Can not configure more than 50 retry delays per task."
        );
        assert_eq!(
            expand_str(Kind::Task, "retry_jitter_factor = -0.5", item).unwrap_err(),
            "`retry_jitter_factor` must be >= 0."
        );
        assert!(
            expand_str(Kind::Task, "retries = 1, retries = 2", item)
                .unwrap_err()
                .contains("given twice")
        );
        assert!(
            expand_str(Kind::Flow, "retry_jitter_factor = 1", item)
                .unwrap_err()
                .starts_with("unknown #[flow] parameter")
        );
        assert!(
            expand_str(Kind::Task, "", "fn f() {}")
                .unwrap_err()
                .contains("must return `Result<T, E>`")
        );
        assert!(
            expand_str(
                Kind::Task,
                "",
                "fn f(&mut self) -> Result<(), ()> { Ok(()) }"
            )
            .unwrap_err()
            .contains("`&self`")
        );
    }

    #[test]
    fn return_types_are_rewritten() {
        let out = expand_str(Kind::Task, "", "fn f() -> Result<u8, String> { Ok(1) }").unwrap();
        assert!(
            out.contains(":: cfgd_sdk :: retry :: RunError < String >"),
            "{out}"
        );
        let out = expand_str(Kind::Task, "", "fn f() -> io::Result<u8> { Ok(1) }").unwrap();
        assert!(out.contains("TaskOutput > :: Retried"), "{out}");
    }

    #[test]
    fn the_companion_shares_cfg_and_lint_attributes_only() {
        let out = expand_str(
            Kind::Task,
            "",
            "/// Docs.\n#[cfg(unix)] #[allow(dead_code)] #[inline] fn f() -> Result<(), String> { Ok(()) }",
        )
        .unwrap();
        let companion = &out[out.find("fn f_with_history").unwrap() - 120..];
        assert!(
            companion.contains("# [cfg (unix)] # [allow (dead_code)]"),
            "{out}"
        );
        assert_eq!(out.matches("# [inline]").count(), 1, "{out}");
        assert_eq!(out.matches("Docs.").count(), 1, "{out}");
    }

    #[test]
    fn names_resolve_as_written_and_the_task_is_built_once() {
        let out = expand_str(
            Kind::Task,
            "retries = 3, retry_delay_seconds = exponential_backoff(10)",
            "async fn f() -> Result<(), String> { Ok(()) }",
        )
        .unwrap();
        assert!(
            out.contains(". retry_delay_seconds (exponential_backoff (10))"),
            "{out}"
        );
        assert!(
            !out.contains(":: cfgd_sdk :: retry :: exponential_backoff"),
            "{out}"
        );
        assert!(out.contains("static __CFGD_RUNNER"), "{out}");
    }

    #[test]
    fn a_task_naming_self_or_generics_is_built_per_call_with_one_jitter_stream() {
        let out = expand_str(
            Kind::Task,
            "jitter_seed = 7, on_failure = Self::hook",
            "fn f(&self) -> Result<(), String> { Ok(()) }",
        )
        .unwrap();
        assert!(!out.contains("static __CFGD_RUNNER"), "{out}");
        assert!(out.contains("static __CFGD_JITTER"), "{out}");
        let out = expand_str(
            Kind::Task,
            "",
            "fn f<E: Clone>(e: E) -> Result<(), E> { Err(e) }",
        )
        .unwrap();
        assert!(!out.contains("static __CFGD_RUNNER"), "{out}");
        let out = expand_str(
            Kind::Task,
            "",
            "fn f<T: Clone>(t: T) -> Result<T, String> { Ok(t) }",
        )
        .unwrap();
        assert!(out.contains("static __CFGD_RUNNER"), "{out}");
    }

    #[test]
    fn a_fail_result_runs_on_a_task_of_the_inner_error() {
        let out = expand_str(
            Kind::Task,
            "",
            "fn f() -> Result<(), Fail<String>> { Ok(()) }",
        )
        .unwrap();
        assert!(
            out.contains(":: cfgd_sdk :: retry :: Task < String >"),
            "{out}"
        );
        assert!(out.contains("RunError < String >"), "{out}");
    }
}
