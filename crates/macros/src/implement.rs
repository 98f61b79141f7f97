//! `#[implement]` on an impl block of a contract trait: each `async fn` becomes the
//! form the trait holds, `fn f<'tomada>(&'tomada self, ..) -> BoxFuture<'tomada, R>`,
//! its body an `async move` block boxed and pinned (as the `async-trait` crate does).
//! Other items are left alone.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{FnArg, ImplItem, ItemImpl, Pat, ReturnType, Type, parse_quote};

use crate::parse::box_async;

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
    quote!(#item)
}
