//! `#[implement]` on an impl block of a contract trait: each `async fn` becomes the
//! form the trait holds, `fn f<'tomada>(&'tomada self, ..) -> BoxFuture<'tomada, R>`,
//! its body an `async move` block boxed and pinned (as the `async-trait` crate does).
//! Other items are left alone.
//!
//! The expansion names nothing of `tomada`: a plugin crate often depends on its
//! contract crate alone and reaches the macro through the contract's re-export
//! (`use pluginapi::tomada;`), where `::tomada` does not resolve (proc macros have no
//! `$crate`). So the future's type is written out from `core`/`std` — it is the very
//! type `tomada::BoxFuture<'tomada, R>` names — like the `async-trait` crate does.
//!
//! It also marks the impl as written under the attribute, for `export!` to check (a
//! forgotten `#[implement]` is then an error that says to add it): `impl From<T> for
//! Box<dyn Contract>`, see `tomada::__private::Implemented`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{FnArg, ImplItem, ItemImpl, Pat, ReturnType, Type, parse_quote};

use crate::parse::{async_lifetime, box_async};

pub(crate) fn expand(mut item: ItemImpl) -> TokenStream {
    for impl_item in &mut item.items {
        let ImplItem::Fn(f) = impl_item else { continue };
        if f.sig.asyncness.is_none() {
            continue;
        }
        let ret: Type = match &f.sig.output {
            ReturnType::Default => parse_quote!(()),
            ReturnType::Type(_, ty) => (**ty).clone(),
        };
        // Every argument moves into the future (dropped when it ends, as with a native
        // `async fn`); patterns are bound inside it.
        let mut bindings = Vec::new();
        for (i, input) in f.sig.inputs.iter_mut().enumerate() {
            let FnArg::Typed(pt) = input else { continue };
            match &*pt.pat {
                Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => {
                    let ident = &p.ident;
                    let mutability = &p.mutability;
                    bindings.push(quote!(let #mutability #ident = #ident;));
                    if let Pat::Ident(p) = &mut *pt.pat {
                        p.mutability = None;
                    }
                }
                pat => {
                    let name = format_ident!("__tomada_arg{}", i);
                    let pat = pat.clone();
                    bindings.push(quote!(let #pat = #name;));
                    *pt.pat = parse_quote!(#name);
                }
            }
        }
        box_async(&mut f.sig);
        let lt = async_lifetime();
        f.sig.output = parse_quote! {
            -> ::core::pin::Pin<::std::boxed::Box<
                dyn ::core::future::Future<Output = #ret> + ::core::marker::Send + #lt
            >>
        };
        let body = &f.block;
        f.block = parse_quote!({
            ::std::boxed::Box::pin(async move {
                #(#bindings)*
                #[allow(unreachable_code, clippy::let_and_return, clippy::needless_return)]
                let __tomada_ret: #ret = #body;
                #[allow(unreachable_code)]
                __tomada_ret
            })
        });
    }
    // The mark `export!` looks for (`tomada::__private::Implemented`): a conversion
    // nameable from `core` alone, so this expansion never names `tomada`.
    let mark = item.trait_.as_ref().filter(|(bang, ..)| bang.is_none()).map(|(_, path, _)| {
        let (impl_generics, _, where_clause) = item.generics.split_for_impl();
        let self_ty = &item.self_ty;
        quote! {
            #[doc(hidden)]
            #[automatically_derived]
            impl #impl_generics ::core::convert::From<#self_ty> for ::std::boxed::Box<dyn #path> #where_clause {
                fn from(value: #self_ty) -> Self {
                    ::std::boxed::Box::new(value)
                }
            }
        }
    });
    quote!(#item #mark)
}
