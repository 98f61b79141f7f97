//! Default bodies as host-side fallbacks. A contract method with a body
//! (`#[tomada(since = 1)] fn count(&self) -> u64 { 0 }`) is, for a plugin that does
//! not implement it, the plugin's own default as usual; and for a plugin built before
//! the method existed, what the *host* runs when it calls the method: the body runs
//! in the host, with `self` standing for the plugin (its other methods call the
//! plugin). Methods without a body keep returning `CallError::NotProvided`.
//!
//! The trait keeps each body twice: as the method's default, and as a hidden
//! `__tomada_fallback_<name>` method (`where Self: Sized`, so `dyn` never sees it)
//! that the host calls on a stand-in for the client, whatever the plugin overrides.
//!
//! An `async fn`'s body becomes the future its boxed form returns
//! (`Box::pin(async move { body })`, as `async-trait` writes it); the host awaits the
//! fallback's future as the call's, and a panic while it is polled is the call's error.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{ItemTrait, TraitItem, parse_quote};

use super::{Parts, Sig};

/// Adds a hidden `__tomada_fallback_<name>` copy of every default body to the trait;
/// the bodies of `async` methods (named in `asyncs`, whose signatures are already
/// boxed) become the futures they return.
pub(crate) fn keep_bodies(item: &mut ItemTrait, asyncs: &[&syn::Ident]) {
    let mut copies = Vec::new();
    for trait_item in &mut item.items {
        if let TraitItem::Fn(f) = trait_item
            && let Some(body) = &mut f.default
        {
            if asyncs.contains(&&f.sig.ident) {
                let stmts = &body.stmts;
                *body = parse_quote!({ ::std::boxed::Box::pin(async move { #(#stmts)* }) });
            }
            let mut copy = f.clone();
            copy.attrs.retain(|a| a.path().is_ident("allow"));
            copy.attrs.push(parse_quote!(#[doc(hidden)]));
            copy.sig.ident = format_ident!("__tomada_fallback_{}", f.sig.ident);
            copy.sig.generics.make_where_clause().predicates.push(parse_quote!(Self: ::core::marker::Sized));
            copies.push(TraitItem::Fn(copy));
        }
    }
    item.items.extend(copies);
}

/// What a client method returns for a plugin that predates it: the fallback's
/// result, or `NotProvided`.
pub(crate) fn missing(parts: &Parts, sig: &Sig) -> TokenStream {
    let Parts { trait_ident, .. } = parts;
    let m = sig.method;
    let name_str = m.ident.to_string();
    let since = m.since;
    let not_provided = quote!(self.raw.not_provided(#name_str, <dyn #trait_ident as ::tomada::Contract>::ABI, #since));
    if !m.has_body {
        if m.is_async {
            return quote!(::tomada::CallFuture::ready(::core::result::Result::Err(#not_provided)));
        }
        return quote!(::core::result::Result::Err(#not_provided));
    }
    let stand_in = stand_in(parts);
    let fallback = format_ident!("__tomada_fallback_{}", m.ident);
    let locals = &sig.locals;
    // Where the client's method gives handles (a generic call, see `client`), the
    // body's trait objects become them through their shared `#[repr(C)]` form.
    let ret_static = &sig.ret_static;
    let to_host_form = |value: TokenStream| match super::handle::host_form(&m.ret) {
        None => value,
        Some(_) => quote! {{
            let value = #value;
            // SAFETY: `__R` has the declared result's `#[repr(C)]` form (the generic
            // call's bound), and reads exactly what its `Abi` impl writes: a handle
            // crosses as the trait object it stands for.
            unsafe { <__R as ::tomada::Abi>::from_ffi(<#ret_static as ::tomada::Abi>::into_ffi(value)) }
        }},
    };
    if m.is_async {
        let value = to_host_form(quote!(<#stand_in as #trait_ident>::#fallback(&this, #(#locals),*).await));
        // The stand-in lives in the future, which borrows the client for as long.
        return quote! {
            ::tomada::CallFuture::remote(::tomada::__private::fallback_async(#name_str, {
                let this = #stand_in(self);
                ::std::boxed::Box::pin(async move { #value })
            }))
        };
    }
    let value = to_host_form(quote!(<#stand_in as #trait_ident>::#fallback(&this, #(#locals),*)));
    quote! {
        ::tomada::__private::fallback(#name_str, || {
            let this = #stand_in(self);
            #value
        })
    }
}

fn stand_in(parts: &Parts) -> syn::Ident {
    format_ident!("__TomadaFallback{}", parts.trait_ident)
}

/// The stand-in the fallbacks run on: the client, implementing the trait (a failed
/// call of the plugin panics, and the fallback's caller gets the failure).
pub(crate) fn emit(parts: &Parts, sigs: &[Sig]) -> TokenStream {
    if !sigs.iter().any(|s| s.method.has_body && s.method.since > 0) {
        return TokenStream::new();
    }
    let Parts { trait_ident, client, bounds, .. } = parts;
    let stand_in = stand_in(parts);
    let trait_str = trait_ident.to_string();
    let methods = sigs.iter().map(|sig| {
        let ident = &sig.method.ident;
        let locals = &sig.locals;
        let tys = sig.method.args.iter().map(|a| &a.ty);
        let ret = &sig.method.ret;
        let what = format!("{trait_str}::{ident}");
        // The declared result, where the client's public method gives handles.
        let call = super::object::declared_call(parts, sig, &quote!(self.client()));
        if sig.method.is_async {
            let lt = crate::parse::async_lifetime();
            let tys = &sig.arg_tys_async;
            return quote! {
                fn #ident<#lt>(&#lt self, #(#locals: #tys),*) -> ::tomada::BoxFuture<#lt, #ret> {
                    let call = #call;
                    ::std::boxed::Box::pin(async move {
                        match call.await {
                            ::core::result::Result::Ok(value) => value,
                            ::core::result::Result::Err(error) => ::tomada::__private::fallback_failed(#what, error),
                        }
                    })
                }
            };
        }
        quote! {
            fn #ident(&self, #(#locals: #tys),*) -> #ret {
                match #call {
                    ::core::result::Result::Ok(value) => value,
                    ::core::result::Result::Err(error) => ::tomada::__private::fallback_failed(#what, error),
                }
            }
        }
    });
    quote! {
        /// The client, as the trait a default body is written against; made for the
        /// duration of one fallback call only.
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        struct #stand_in(*const #client);

        // SAFETY: the client is `Send + Sync`; the stand-in lives only inside one call
        // of the client's own method, which borrows the client.
        unsafe impl ::core::marker::Send for #stand_in {}
        // SAFETY: as above.
        unsafe impl ::core::marker::Sync for #stand_in {}

        #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
        impl #stand_in {
            #[allow(clippy::undocumented_unsafe_blocks)]
            fn client(&self) -> &#client {
                // SAFETY: made from a live `&Client` for one call (see above).
                unsafe { &*self.0 }
            }
        }

        #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
        impl #trait_ident for #stand_in where #bounds {
            #(#methods)*
        }
    }
}
