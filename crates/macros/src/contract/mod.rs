//! `#[contract]`: a short orchestrator over one emitter per job. Each emitter takes
//! the contract's [`Parts`] and, per method, a [`Sig`]: the vtable entry and the
//! plugin's in-process shim ([`vtable`]), the host's client method ([`client`]), the
//! plugin's byte-level arm for isolated calls ([`dispatch`]), and the description
//! and fingerprint ([`describe`]).

mod client;
mod describe;
mod dispatch;
mod fallback;
mod handle;
mod object;
mod vtable;

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, ItemTrait, Type, TypeParamBound};

use crate::parse::{self, ContractArgs, Method, with_static_lifetimes};

/// What every emitter needs to know about the contract.
pub(crate) struct Parts<'a> {
    pub(crate) trait_ident: &'a Ident,
    pub(crate) vis: &'a syn::Visibility,
    pub(crate) vtable: Ident,
    pub(crate) client: Ident,
    /// `where` predicates requiring every argument type to be `Arg` and every result
    /// type `Abi`, spanned at the type as written; see [`bounds`].
    pub(crate) bounds: TokenStream,
    /// Whether a method's signature mentions a trait object (`dyn`), so the contract
    /// may refer to itself through one (see `object`).
    pub(crate) passes_objects: bool,
}

/// One method, with everything its emitters share.
pub(crate) struct Sig<'a> {
    pub(crate) method: &'a Method,
    pub(crate) index: usize,
    /// Argument types with `'static` lifetimes, nameable in items.
    pub(crate) arg_tys_static: Vec<Type>,
    /// The result type with `'static` lifetimes.
    pub(crate) ret_static: Type,
    /// Argument types with the lifetime of an async method's future (`'tomada`).
    pub(crate) arg_tys_async: Vec<Type>,
    /// `__tomada_a0`, ... : the arguments inside generated bodies (never clashing
    /// with the generated locals, whatever the user named them).
    pub(crate) locals: Vec<Ident>,
}

impl<'a> Sig<'a> {
    fn new(method: &'a Method, index: usize) -> Self {
        Sig {
            method,
            index,
            arg_tys_static: method.args.iter().map(|a| with_static_lifetimes(&a.ty)).collect(),
            ret_static: with_static_lifetimes(&method.ret),
            arg_tys_async: method.args.iter().map(|a| parse::with_lifetime(&a.ty, &parse::async_lifetime())).collect(),
            locals: (0..method.args.len()).map(|i| format_ident!("__tomada_a{}", i)).collect(),
        }
    }

    /// The `#[repr(C)]` parameter list of the method's `extern "C"` shim.
    pub(crate) fn ffi_params(&self) -> TokenStream {
        let locals = &self.locals;
        let ffi = self.arg_tys_static.iter().map(|t| quote_spanned!(t.span()=> <#t as ::tomada::Arg>::Ffi));
        let out = self.out_ty();
        quote! {
            this: *const ::core::ffi::c_void,
            #(#locals: #ffi,)*
            out: *mut #out,
            panic: *mut ::tomada::__private::RVec
        }
    }
}

impl Sig<'_> {
    /// What the shim writes: the result's `#[repr(C)]` form, or for an `async fn` the
    /// future that makes it.
    pub(crate) fn out_ty(&self) -> TokenStream {
        let ret = &self.ret_static;
        if self.method.is_async {
            quote!(::tomada::__private::FfiFuture<<#ret as ::tomada::Abi>::Ffi>)
        } else {
            quote!(<#ret as ::tomada::Abi>::Ffi)
        }
    }
}

/// The `where` predicates that make a contract with an unsupported type fail with one
/// error: every generated item carries the same predicates, spanned at the type the
/// author wrote, so each unsupported type is reported once (rustc reports an unmet
/// bound of an item's own `where` clause once, at its span, and then type-checks the
/// item under it, so nothing else in the item fails), with `Abi`'s message naming it.
fn bounds(methods: &[Method]) -> TokenStream {
    let mut seen = std::collections::HashSet::new();
    let mut out = TokenStream::new();
    for m in methods {
        for a in &m.args {
            let t = respan(&with_static_lifetimes(&a.ty), a.ty.span());
            if seen.insert(quote!(#t Arg).to_string()) {
                out.extend(quote_spanned!(a.ty.span()=> #t: ::tomada::Arg,));
            }
        }
        let t = respan(&with_static_lifetimes(&m.ret), m.ret.span());
        if seen.insert(quote!(#t Abi).to_string()) {
            out.extend(quote_spanned!(m.ret.span()=> #t: ::tomada::Abi,));
        }
    }
    out
}

/// `ty`'s tokens, all at `span`: every bound on the type then points at one place,
/// and rustc reports one error for all of them.
fn respan(ty: &Type, span: proc_macro2::Span) -> TokenStream {
    fn walk(tokens: TokenStream, span: proc_macro2::Span) -> TokenStream {
        tokens
            .into_iter()
            .map(|mut tt| {
                if let proc_macro2::TokenTree::Group(g) = &tt {
                    let mut group = proc_macro2::Group::new(g.delimiter(), walk(g.stream(), span));
                    group.set_span(span);
                    tt = proc_macro2::TokenTree::Group(group);
                } else {
                    tt.set_span(span);
                }
                tt
            })
            .collect()
    }
    walk(quote!(#ty), span)
}

/// Expands `#[contract]`. On a mistake the trait is still emitted (so the rest of the
/// crate keeps compiling against it) next to one error per mistake.
pub(crate) fn expand(args: ContractArgs, mut item: ItemTrait) -> TokenStream {
    let contract = match parse::contract(&mut item) {
        Ok(c) => c,
        Err(e) => {
            let error = e.into_compile_error();
            return quote!(#item #error);
        }
    };
    // Plugin instances are shared by every thread of the host.
    for bound in [quote!(::core::marker::Send), quote!(::core::marker::Sync), quote!('static)] {
        let bound: TypeParamBound = syn::parse2(bound).expect("a bound");
        item.supertraits.push(bound);
    }
    if item.colon_token.is_none() {
        item.colon_token = Some(Default::default());
    }
    // Default bodies, kept for the host (see `fallback`).
    let asyncs: Vec<&Ident> = contract.methods.iter().filter(|m| m.is_async).map(|m| &m.ident).collect();
    fallback::keep_bodies(&mut item, &asyncs);
    // The way back from a `dyn C` to the client behind it (see the client's `of`).
    let client_ident = format_ident!("{}Client", item.ident);
    item.items.push(syn::parse_quote! {
        #[doc(hidden)]
        fn __tomada_client(&self) -> ::core::option::Option<&#client_ident> {
            ::core::option::Option::None
        }
    });
    let parts = Parts {
        trait_ident: &item.ident,
        vis: &item.vis,
        vtable: format_ident!("{}VTable", item.ident),
        client: format_ident!("{}Client", item.ident),
        bounds: bounds(&contract.methods),
        passes_objects: contract
            .methods
            .iter()
            .any(|m| m.args.iter().map(|a| &a.ty).chain([&m.ret]).any(|t| quote!(#t).to_string().contains("dyn"))),
    };
    let sigs: Vec<Sig> = contract.methods.iter().enumerate().map(|(i, m)| Sig::new(m, i)).collect();
    let vtable = vtable::emit(&parts, &sigs);
    let client = client::emit(&parts, &sigs);
    let dispatch = dispatch::emit(&parts, &sigs);
    let describe = describe::emit(&parts, &sigs, &args, contract.minor);
    let object = object::emit(&parts, &sigs, &args);
    let implemented = implemented(&parts, contract.methods.iter().any(|m| m.is_async));
    let fallback = fallback::emit(&parts, &sigs);
    quote! {
        #item
        #vtable
        #client
        #dispatch
        #describe
        #object
        #implemented
        #fallback
    }
}

/// What `export!` checks of a type it exports: for a contract with `async fn`s, that
/// its impl was written under `#[tomada::implement]` (see `tomada::__private::Implemented`:
/// forgetting it is otherwise an E0053 that cannot say so).
fn implemented(parts: &Parts, has_async: bool) -> TokenStream {
    let Parts { trait_ident, bounds, .. } = parts;
    let marker = has_async.then(|| quote!(+ ::tomada::__private::Implemented<dyn #trait_ident>));
    quote! {
        #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
        impl dyn #trait_ident where #bounds {
            #[doc(hidden)]
            pub const fn __tomada_implemented<T: #trait_ident #marker>() {}
        }
    }
}
