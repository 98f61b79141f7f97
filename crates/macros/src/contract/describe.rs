//! The contract's description (methods, their types described whole), its layout
//! fingerprint, and the `Contract` impl that ties the generated parts together.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::{Parts, Sig};
use crate::parse::ContractArgs;

pub(crate) fn emit(parts: &Parts, sigs: &[Sig], args: &ContractArgs, minor: u32) -> TokenStream {
    let Parts { trait_ident, vtable, client, bounds, .. } = parts;
    let abi = &args.abi;
    let name = match &args.name {
        Some(n) => quote!(#n),
        None => {
            let t = trait_ident.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #t))
        }
    };
    let objects = super::object::contract_items(parts, sigs.len(), args);
    let methods = sigs.iter().map(|sig| {
        let name_str = sig.method.ident.to_string();
        let since = sig.method.since;
        let fallback = sig.method.has_body;
        let arg_descs = sig.arg_tys_static.iter().map(|t| quote_spanned!(t.span()=> <#t as ::tomada::Arg>::DESC));
        let ret = &sig.ret_static;
        // An async method's result is described as `async<R>`: it fits no plain method
        // (`async` is a keyword: no type has that name), and reads back as `async fn`.
        let ret_desc = if sig.method.is_async {
            quote! {
                ::tomada::__private::TypeRef::new(&::tomada::__private::TypeDesc::generic(
                    ::tomada::interface::ASYNC,
                    &[<#ret as ::tomada::Abi>::DESC],
                ))
            }
        } else {
            quote!(<#ret as ::tomada::Abi>::DESC)
        };
        quote! {
            ::tomada::__private::MethodDesc {
                name: #name_str,
                since: #since,
                fallback: #fallback,
                args: &[#(#arg_descs),*],
                ret: #ret_desc,
            }
        }
    });
    quote! {
        // SAFETY: `VTable`, `DESCRIPTION`, `FINGERPRINT` and `__client` are generated
        // together from the trait above.
        #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
        unsafe impl ::tomada::Contract for dyn #trait_ident where #bounds {
            const NAME: &'static str = #name;
            const ABI: u32 = #abi;
            const FINGERPRINT: u64 = ::tomada::interface::fingerprint(&<Self as ::tomada::Contract>::DESCRIPTION);
            const MINOR: u32 = ::tomada::interface::minor(&<Self as ::tomada::Contract>::DESCRIPTION);
            const DESCRIPTION: ::tomada::__private::ContractDesc = ::tomada::__private::ContractDesc {
                name: <Self as ::tomada::Contract>::NAME,
                abi: <Self as ::tomada::Contract>::ABI,
                minor: #minor,
                methods: &[#(#methods),*],
            };
            type VTable = #vtable;
            type Client = #client;
            // The dispatch function (`dispatch.rs`) answers byte strings alone when asked.
            const DISPATCH_FLAGS: u32 = ::tomada::__private::descriptor::flags::BYTES_ALONE;

            unsafe fn __client(raw: ::tomada::__private::RawClient) -> #client {
                #client { raw }
            }

            #objects
        }
    }
}
