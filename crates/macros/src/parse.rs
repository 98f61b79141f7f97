//! Reading a contract trait: its arguments (`abi`, `name`) and its methods, refusing
//! whatever cannot cross a plugin boundary with one error each.

use proc_macro2::Span;
use quote::format_ident;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{
    Error, Expr, FnArg, Ident, ItemTrait, LitStr, Pat, ReturnType, Token, TraitItem, TraitItemFn, Type, parse_quote,
};

use crate::types::{self, Place};

/// `#[contract(abi = N, name = "...")]`.
pub(crate) struct ContractArgs {
    pub(crate) abi: Expr,
    pub(crate) name: Option<LitStr>,
}

impl Parse for ContractArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut abi = None;
        let mut name = None;
        let pairs = Punctuated::<syn::MetaNameValue, Token![,]>::parse_terminated(input)?;
        for pair in pairs {
            if pair.path.is_ident("abi") {
                abi = Some(pair.value);
            } else if pair.path.is_ident("name") {
                match pair.value {
                    Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => name = Some(s),
                    other => return Err(Error::new(other.span(), "`name` must be a string literal")),
                }
            } else {
                return Err(Error::new(pair.path.span(), "unknown argument; expected `abi = N` or `name = \"...\"`"));
            }
        }
        let abi = abi.ok_or_else(|| {
            Error::new(
                Span::call_site(),
                "missing `abi = N`: the contract's major version, e.g. #[tomada::contract(abi = 1)]",
            )
        })?;
        Ok(ContractArgs { abi, name })
    }
}

/// A method argument after `&self`.
pub(crate) struct Arg {
    /// The name the client's method shows (the trait's own, or `argN`).
    pub(crate) name: Ident,
    /// The type as written.
    pub(crate) ty: Type,
}

/// A contract method.
pub(crate) struct Method {
    pub(crate) ident: Ident,
    /// Its doc attributes, for the client.
    pub(crate) docs: Vec<syn::Attribute>,
    pub(crate) since: u32,
    pub(crate) args: Vec<Arg>,
    pub(crate) ret: Type,
    /// Declared `async fn`: in the emitted trait it returns a `BoxFuture`.
    pub(crate) is_async: bool,
    /// Has a default body: what the host runs for a plugin that predates the method
    /// (see `contract::fallback`).
    pub(crate) has_body: bool,
}

/// A contract trait, read.
pub(crate) struct Contract {
    pub(crate) methods: Vec<Method>,
    pub(crate) minor: u32,
}

/// Reads the trait's methods (removing the `#[tomada(..)]` attributes it must not
/// keep). Every mistake found is reported, each once.
pub(crate) fn contract(item: &mut ItemTrait) -> syn::Result<Contract> {
    let mut errors: Option<Error> = None;
    let mut add = |e: Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        add(Error::new(
            item.generics.span(),
            "a contract trait cannot be generic: a plugin boundary needs one concrete interface",
        ));
    }
    if let Some(u) = &item.unsafety {
        add(Error::new(u.span(), "a contract trait cannot be `unsafe`"));
    }
    let mut methods: Vec<Method> = Vec::new();
    for trait_item in &mut item.items {
        match trait_item {
            TraitItem::Fn(f) => {
                match method(f) {
                    Ok(m) => {
                        if let Some(prev) = methods.last()
                            && m.since < prev.since
                        {
                            add(Error::new(
                                f.sig.ident.span(),
                                format!(
                                    "method `{}` (minor {}) comes after `{}` (minor {}): methods of a minor version are appended at the end of the trait, in version order",
                                    m.ident, m.since, prev.ident, prev.since
                                ),
                            ));
                        }
                        if m.is_async {
                            box_async(&mut f.sig);
                        }
                        methods.push(m);
                    }
                    Err(e) => add(e),
                }
                // `#[tomada(...)]` is ours; the trait itself must not keep it.
                f.attrs.retain(|a| !a.path().is_ident("tomada"));
            }
            other => add(Error::new(
                other.span(),
                "a contract trait may only contain methods (no associated types or consts): the host calls it through a table of functions",
            )),
        }
    }
    match errors {
        Some(e) => Err(e),
        None => {
            let minor = methods.iter().map(|m| m.since).max().unwrap_or(0);
            Ok(Contract { methods, minor })
        }
    }
}

/// `#[tomada(since = N)]` on a method, if any.
fn since_of(attrs: &[syn::Attribute]) -> syn::Result<u32> {
    let mut since = 0;
    for attr in attrs.iter().filter(|a| a.path().is_ident("tomada")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("since") {
                let lit: syn::LitInt = meta.value()?.parse()?;
                since = lit.base10_parse()?;
                if since == 0 {
                    return Err(meta.error("`since` is a minor version that added the method: 1 or more"));
                }
                Ok(())
            } else {
                Err(meta.error("unknown tomada method attribute; expected `since = N`"))
            }
        })?;
    }
    Ok(since)
}

/// Whether a method has `where Self: Sized` (excluded from `dyn Trait`).
fn sized_self_only(f: &TraitItemFn) -> bool {
    f.sig.generics.where_clause.as_ref().is_some_and(|w| {
        w.predicates.iter().any(|p| match p {
            syn::WherePredicate::Type(t) => {
                matches!(&t.bounded_ty, Type::Path(p) if p.path.is_ident("Self"))
                    && t.bounds.iter().any(|b| matches!(b, syn::TypeParamBound::Trait(tb) if tb.path.is_ident("Sized")))
            }
            _ => false,
        })
    })
}

fn method(f: &TraitItemFn) -> syn::Result<Method> {
    let sig = &f.sig;
    let name = &sig.ident;
    let receiver = match sig.inputs.first() {
        Some(FnArg::Receiver(r)) => Some(r),
        _ => None,
    };
    if sized_self_only(f) || receiver.is_none() {
        return Err(Error::new(
            sig.span(),
            format!(
                "contract method `{name}` must take `&self`: the host calls it on the plugin's instance; a constructor (`fn new() -> Self`) belongs in `tomada::export!(MyPlugin as Trait = MyPlugin::new())`"
            ),
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(Error::new(
            sig.generics.span(),
            format!(
                "contract method `{name}` cannot be generic (lifetimes included); a plugin boundary needs one concrete signature"
            ),
        ));
    }
    if let Some(u) = &sig.unsafety {
        return Err(Error::new(u.span(), format!("contract method `{name}` cannot be `unsafe`")));
    }
    if let Some(v) = &sig.variadic {
        return Err(Error::new(v.span(), format!("contract method `{name}` cannot be variadic")));
    }
    let r = receiver.expect("checked above");
    if r.reference.is_none() || r.mutability.is_some() || r.colon_token.is_some() {
        return Err(Error::new(
            r.span(),
            format!(
                "contract method `{name}` must take `&self` (a plugin instance is shared by all callers; keep mutable state behind a `Mutex` or atomics)"
            ),
        ));
    }
    let mut args = Vec::new();
    for (i, input) in sig.inputs.iter().skip(1).enumerate() {
        let FnArg::Typed(pt) = input else { unreachable!("only the first argument can be a receiver") };
        let what = format!("argument {} of `{name}`", i + 1);
        types::check(&pt.ty, Place::Argument, &what)?;
        if let Some(lifetime) = named_lifetime(&pt.ty) {
            // A `&'static str` argument would let the plugin keep a borrow of the
            // caller's (or, isolated, the channel's) buffer past the call.
            return Err(Error::new(
                lifetime.span(),
                format!(
                    "{what} names the lifetime `{lifetime}`: borrowed arguments live only for the call; write `&str` / `&[T]` (or take `String` / `Vec<T>` to keep the value)"
                ),
            ));
        }
        let arg_name = match &*pt.pat {
            Pat::Ident(p) if p.ident != "self" => format_ident!("{}", p.ident.to_string().trim_start_matches("r#")),
            _ => format_ident!("arg{}", i + 1),
        };
        args.push(Arg { name: arg_name, ty: (*pt.ty).clone() });
    }
    let ret = match &sig.output {
        ReturnType::Default => parse_quote!(()),
        ReturnType::Type(_, ty) => {
            types::check(ty, Place::Result, &format!("result of `{name}`"))?;
            (**ty).clone()
        }
    };
    let docs = f.attrs.iter().filter(|a| a.path().is_ident("doc")).cloned().collect();
    let since = since_of(&f.attrs)?;
    Ok(Method {
        ident: name.clone(),
        docs,
        since,
        args,
        ret,
        is_async: sig.asyncness.is_some(),
        has_body: f.default.is_some(),
    })
}

/// The first lifetime written out in `ty`, other than `'_`.
pub(crate) fn named_lifetime(ty: &Type) -> Option<syn::Lifetime> {
    struct Finder(Option<syn::Lifetime>);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_lifetime(&mut self, l: &'ast syn::Lifetime) {
            if l.ident != "_" && self.0.is_none() {
                self.0 = Some(l.clone());
            }
        }
    }
    let mut f = Finder(None);
    syn::visit::Visit::visit_type(&mut f, ty);
    f.0
}

/// Whether `ty` borrows anything.
pub(crate) fn contains_reference(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_reference(&mut self, _: &'ast syn::TypeReference) {
            self.0 = true;
        }
        fn visit_lifetime(&mut self, _: &'ast syn::Lifetime) {
            self.0 = true;
        }
    }
    let mut f = Finder(false);
    syn::visit::Visit::visit_type(&mut f, ty);
    f.0
}

/// The lifetime an `async fn` of a contract is rewritten with: the instance and every
/// borrowed argument live as long as the future.
pub(crate) fn async_lifetime() -> syn::Lifetime {
    parse_quote!('tomada)
}

/// Rewrites `async fn f(&self, a: &str) -> R` into the form a `dyn` trait can hold:
/// `fn f<'tomada>(&'tomada self, a: &'tomada str) -> ::tomada::BoxFuture<'tomada, R>`
/// (the future may borrow the instance and the arguments, as with `async-trait`).
pub(crate) fn box_async(sig: &mut syn::Signature) {
    let lt = async_lifetime();
    sig.asyncness = None;
    sig.generics.params.insert(0, parse_quote!(#lt));
    for input in &mut sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                if let Some((_, l)) = &mut r.reference {
                    *l = Some(lt.clone());
                    let mutability = r.mutability;
                    *r.ty = parse_quote!(&#lt #mutability Self);
                }
            }
            FnArg::Typed(pt) => *pt.ty = with_lifetime(&pt.ty, &lt),
        }
    }
    let ret: Type = match &sig.output {
        ReturnType::Default => parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    sig.output = parse_quote!(-> ::tomada::BoxFuture<#lt, #ret>);
}

/// Gives every elided lifetime (`&T`, `'_`) in `ty` the lifetime `lt`; named ones stay.
pub(crate) fn with_lifetime(ty: &Type, lt: &syn::Lifetime) -> Type {
    struct Named<'l>(&'l syn::Lifetime);
    impl VisitMut for Named<'_> {
        fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
            if r.lifetime.is_none() {
                r.lifetime = Some(self.0.clone());
            }
            syn::visit_mut::visit_type_reference_mut(self, r);
        }
        fn visit_lifetime_mut(&mut self, l: &mut syn::Lifetime) {
            if l.ident == "_" {
                *l = self.0.clone();
            }
        }
    }
    let mut ty = ty.clone();
    Named(lt).visit_type_mut(&mut ty);
    ty
}

/// Replaces every lifetime (named or elided) with `'static`, so a type can be named
/// in a struct field, a bound or a `const`.
pub(crate) fn with_static_lifetimes(ty: &Type) -> Type {
    struct StaticLifetimes;
    impl VisitMut for StaticLifetimes {
        fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
            r.lifetime = Some(parse_quote!('static));
            syn::visit_mut::visit_type_reference_mut(self, r);
        }
        fn visit_lifetime_mut(&mut self, l: &mut syn::Lifetime) {
            *l = parse_quote!('static);
        }
    }
    let mut ty = ty.clone();
    StaticLifetimes.visit_type_mut(&mut ty);
    ty
}
