//! Trait objects of the contract (`&dyn C`, `Box<dyn C>`, `Arc<dyn C>`) crossing the
//! boundary: the object's description, its conversions to and from `RObject` (with
//! holder types whose vtable forwards to the object), and the client implementing the
//! trait, so the receiving side sees the trait exactly as declared.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{Parts, Sig};
use crate::parse::ContractArgs;

pub(crate) fn emit(parts: &Parts, sigs: &[Sig], args: &ContractArgs) -> TokenStream {
    let Parts { trait_ident, client, bounds, .. } = parts;
    let object_static = format_ident!("__TOMADA_OBJECT_{}", trait_ident);
    let abi = &args.abi;
    let name = contract_name(parts, args);

    // Each holder type (a sized stand-in for the object) forwards every method.
    let forwarding = |deref: TokenStream| {
        let methods = sigs.iter().map(|sig| {
            let ident = &sig.method.ident;
            let locals = &sig.locals;
            let tys = sig.method.args.iter().map(|a| &a.ty);
            let ret = &sig.method.ret;
            if sig.method.is_async {
                let lt = crate::parse::async_lifetime();
                let tys = &sig.arg_tys_async;
                return quote! {
                    fn #ident<#lt>(&#lt self, #(#locals: #tys),*) -> ::tomada::BoxFuture<#lt, #ret> {
                        #[allow(clippy::undocumented_unsafe_blocks)]
                        let object = #deref;
                        object.#ident(#(#locals),*)
                    }
                };
            }
            quote! {
                fn #ident(&self, #(#locals: #tys),*) -> #ret {
                    #[allow(clippy::undocumented_unsafe_blocks)]
                    let object = #deref;
                    object.#ident(#(#locals),*)
                }
            }
        });
        quote!(#(#methods)*)
    };
    let box_methods = forwarding(quote!(&*self.0));
    // SAFETY of the deref: a `&dyn` holder lives only while the borrow it was made
    // from does (`__ref_into_object`'s contract).
    let ref_methods = forwarding(quote!(unsafe { &*self.0 }));
    let arc_methods = forwarding(quote!(&*self.0));

    // The client implements the trait: a failed call panics, and inside a plugin that
    // panic becomes the host's `CallError::Panicked` for its outer call.
    let trait_str = trait_ident.to_string();
    let client_methods = sigs.iter().map(|sig| {
        let ident = &sig.method.ident;
        let locals = &sig.locals;
        let tys = sig.method.args.iter().map(|a| &a.ty);
        let ret = &sig.method.ret;
        let what = format!("{trait_str}::{ident}");
        let lt = crate::parse::async_lifetime();
        let call = declared_call(parts, sig, &quote!(self));
        if sig.method.is_async {
            let tys = &sig.arg_tys_async;
            return quote! {
                fn #ident<#lt>(&#lt self, #(#locals: #tys),*) -> ::tomada::BoxFuture<#lt, #ret> {
                    let call = #call;
                    ::std::boxed::Box::pin(async move {
                        match call.await {
                            ::core::result::Result::Ok(value) => value,
                            ::core::result::Result::Err(error) => ::tomada::call::__object_call_failed(#what, error),
                        }
                    })
                }
            };
        }
        quote! {
            fn #ident(&self, #(#locals: #tys),*) -> #ret {
                match #call {
                    ::core::result::Result::Ok(value) => value,
                    ::core::result::Result::Err(error) => ::tomada::call::__object_call_failed(#what, error),
                }
            }
        }
    });

    // A contract whose methods pass trait objects may (through them) refer to itself:
    // its description is then a `static`, which may take part in a cycle. Others use a
    // `const` of the `Contract` impl, which keeps one error per unsupported type.
    let object_static = parts.passes_objects.then(|| {
        quote! {
            #[doc(hidden)]
            #[allow(non_upper_case_globals)]
            static #object_static: ::tomada::__private::TypeDesc = ::tomada::__private::TypeDesc::object(
                ::core::concat!("dyn ", #name),
                #name,
                #abi,
                <dyn #trait_ident as ::tomada::Contract>::DESCRIPTION.methods,
            );
        }
    });
    // The contract's bounds, where they cannot form a cycle (a contract passing no
    // objects cannot reach itself), so an unsupported type is reported once.
    let impl_bounds = (!parts.passes_objects).then(|| quote!(where #bounds));
    quote! {
        #object_static

        #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
        impl #trait_ident for #client where #bounds {
            #(#client_methods)*
            fn __tomada_client(&self) -> ::core::option::Option<&#client> {
                ::core::option::Option::Some(self)
            }
        }

        #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
        impl dyn #trait_ident where #bounds {
            /// An object of holder type `H`, with `H`'s vtable made once, at run time, and
            /// kept in `vtable` for the program's life (a `static` of the vtable's own type
            /// would be checked apart from this impl's bounds).
            #[doc(hidden)]
            fn __tomada_object_of<H: #trait_ident>(
                holder: H,
                vtable: &'static ::std::sync::OnceLock<::tomada::__private::Leaked>,
            ) -> ::tomada::__private::RObject {
                let vtable = vtable.get_or_init(|| {
                    let vtable = ::std::boxed::Box::new(<dyn #trait_ident>::__tomada_vtable::<H>());
                    ::tomada::__private::Leaked((::std::boxed::Box::leak(vtable) as *const <dyn #trait_ident as ::tomada::Contract>::VTable).cast())
                }).0;
                ::tomada::__private::RObject {
                    this: ::std::boxed::Box::into_raw(::std::boxed::Box::new(holder)).cast(),
                    vtable,
                    release: ::core::option::Option::Some(::tomada::__private::release_boxed::<H>),
                }
            }

            /// An object of holder type `H`, kept for the other side of a channel: served
            /// through this contract's byte-level dispatch, dropped when released.
            #[doc(hidden)]
            fn __tomada_export_of<H: #trait_ident>(holder: H) -> ::tomada::__private::Exported {
                ::tomada::__private::Exported {
                    this: ::std::boxed::Box::into_raw(::std::boxed::Box::new(holder)).cast(),
                    dispatch: <dyn #trait_ident>::__tomada_dispatch::<H>,
                    release: ::core::option::Option::Some(::tomada::__private::release_boxed::<H>),
                }
            }

            /// A `Box<dyn C>` as a sized holder that forwards every method.
            fn __tomada_box_holder(object: ::std::boxed::Box<dyn #trait_ident>) -> impl #trait_ident {
                struct Holder(::std::boxed::Box<dyn #trait_ident>);
                impl #trait_ident for Holder { #box_methods }
                Holder(object)
            }

            /// An `Arc<dyn C>` as a sized holder that forwards every method.
            fn __tomada_arc_holder(object: ::std::sync::Arc<dyn #trait_ident>) -> impl #trait_ident {
                struct Holder(::std::sync::Arc<dyn #trait_ident>);
                impl #trait_ident for Holder { #arc_methods }
                Holder(object)
            }

            /// A `&dyn C` as a sized holder that forwards every method.
            ///
            /// # Safety
            /// `object` must outlive the holder.
            unsafe fn __tomada_ref_holder(object: &dyn #trait_ident) -> impl #trait_ident {
                struct Holder(*const (dyn #trait_ident + 'static));
                // SAFETY: the object behind the pointer is `Send + Sync` (the trait
                // requires it).
                unsafe impl ::core::marker::Send for Holder {}
                // SAFETY: as above.
                unsafe impl ::core::marker::Sync for Holder {}
                impl #trait_ident for Holder { #ref_methods }
                // SAFETY: only the borrow's lifetime is erased; the caller keeps the
                // object alive as long as the holder.
                #[allow(clippy::transmute_ptr_to_ptr)]
                let object: *const (dyn #trait_ident + 'static) = unsafe { ::core::mem::transmute(object as *const dyn #trait_ident) };
                Holder(object)
            }

            #[doc(hidden)]
            pub fn __tomada_box_export(object: ::std::boxed::Box<dyn #trait_ident>) -> ::tomada::__private::Exported {
                <dyn #trait_ident>::__tomada_export_of(<dyn #trait_ident>::__tomada_box_holder(object))
            }

            #[doc(hidden)]
            pub fn __tomada_arc_export(object: ::std::sync::Arc<dyn #trait_ident>) -> ::tomada::__private::Exported {
                <dyn #trait_ident>::__tomada_export_of(<dyn #trait_ident>::__tomada_arc_holder(object))
            }

            /// # Safety
            /// `object` must outlive the returned `Exported`.
            #[doc(hidden)]
            pub unsafe fn __tomada_ref_export(object: &dyn #trait_ident) -> ::tomada::__private::Exported {
                // SAFETY: the caller keeps `object` alive as long as the `Exported`.
                <dyn #trait_ident>::__tomada_export_of(unsafe { <dyn #trait_ident>::__tomada_ref_holder(object) })
            }

            #[doc(hidden)]
            pub fn __tomada_box_into_object(object: ::std::boxed::Box<dyn #trait_ident>) -> ::tomada::__private::RObject {
                static VTABLE: ::std::sync::OnceLock<::tomada::__private::Leaked> = ::std::sync::OnceLock::new();
                <dyn #trait_ident>::__tomada_object_of(<dyn #trait_ident>::__tomada_box_holder(object), &VTABLE)
            }

            #[doc(hidden)]
            pub fn __tomada_arc_into_object(object: ::std::sync::Arc<dyn #trait_ident>) -> ::tomada::__private::RObject {
                static VTABLE: ::std::sync::OnceLock<::tomada::__private::Leaked> = ::std::sync::OnceLock::new();
                <dyn #trait_ident>::__tomada_object_of(<dyn #trait_ident>::__tomada_arc_holder(object), &VTABLE)
            }

            /// # Safety
            /// `object` must outlive the returned `RObject`.
            #[doc(hidden)]
            pub unsafe fn __tomada_ref_into_object(object: &dyn #trait_ident) -> ::tomada::__private::RObject {
                static VTABLE: ::std::sync::OnceLock<::tomada::__private::Leaked> = ::std::sync::OnceLock::new();
                // SAFETY: the caller keeps `object` alive as long as the `RObject`.
                <dyn #trait_ident>::__tomada_object_of(unsafe { <dyn #trait_ident>::__tomada_ref_holder(object) }, &VTABLE)
            }
        }

        // SAFETY: a `Box<dyn C>` crosses as an `RObject` made above (a vtable for its
        // holder and a release that drops it); the other side gets the client, which
        // calls through that vtable.
        unsafe impl ::tomada::Abi for ::std::boxed::Box<dyn #trait_ident> #impl_bounds {
            type Ffi = ::tomada::__private::RObject;
            const DESC: ::tomada::__private::TypeRef = ::tomada::__private::TypeRef::new(
                &::tomada::__private::TypeDesc::generic("Box", &[<dyn #trait_ident as ::tomada::Contract>::OBJECT]),
            );
            const WIRE_MIN: usize = 8;
            fn into_ffi(self) -> ::tomada::__private::RObject {
                <dyn #trait_ident as ::tomada::Contract>::__box_into_object(self)
            }
            unsafe fn from_ffi(ffi: ::tomada::__private::RObject) -> Self {
                // SAFETY: made by this contract's object conversion (the caller's guarantee).
                let client = unsafe { <dyn #trait_ident as ::tomada::Contract>::__object_into_client(ffi) };
                <dyn #trait_ident as ::tomada::Contract>::__client_into_box(client)
            }
            fn encode(&self, _: &mut ::std::vec::Vec<u8>) {
                // Containers pass objects on by value (`encode_owned`): a `Box` is given
                // away, never lent.
                ::core::unreachable!("a `Box<dyn {}>` is only given away across a channel", ::core::stringify!(#trait_ident))
            }
            fn encode_owned(self, out: &mut ::std::vec::Vec<u8>) {
                ::tomada::__private::encode_exported(<dyn #trait_ident as ::tomada::Contract>::__export_box(self), out)
            }
            fn decode(r: &mut ::tomada::__private::Reader<'_>) -> ::core::result::Result<Self, ::tomada::__private::WireError> {
                let channel = ::tomada::__private::decode_remote(r)?;
                let client = <dyn #trait_ident as ::tomada::Contract>::__remote_client(channel);
                ::core::result::Result::Ok(<dyn #trait_ident as ::tomada::Contract>::__client_into_box(client))
            }
        }

        // SAFETY: the handle (the client of an object of the other side) crosses exactly
        // as the `Box<dyn C>` it stands for: the same description and `RObject`, made and
        // read by the same conversions, and the same bytes. The client's methods decode
        // results straight into handles (see `handle`).
        unsafe impl ::tomada::Abi for #client #impl_bounds {
            type Ffi = ::tomada::__private::RObject;
            const DESC: ::tomada::__private::TypeRef = <::std::boxed::Box<dyn #trait_ident> as ::tomada::Abi>::DESC;
            const WIRE_MIN: usize = 8;
            fn into_ffi(self) -> ::tomada::__private::RObject {
                <dyn #trait_ident as ::tomada::Contract>::__box_into_object(<dyn #trait_ident as ::tomada::Contract>::__client_into_box(self))
            }
            unsafe fn from_ffi(ffi: ::tomada::__private::RObject) -> Self {
                // SAFETY: made by this contract's object conversion (the caller's guarantee).
                unsafe { <dyn #trait_ident as ::tomada::Contract>::__object_into_client(ffi) }
            }
            fn encode(&self, _: &mut ::std::vec::Vec<u8>) {
                // As a `Box<dyn C>`: given away, never lent.
                ::core::unreachable!("a `Handle<dyn {}>` is only given away across a channel", ::core::stringify!(#trait_ident))
            }
            fn encode_owned(self, out: &mut ::std::vec::Vec<u8>) {
                let object = <dyn #trait_ident as ::tomada::Contract>::__client_into_box(self);
                ::tomada::__private::encode_exported(<dyn #trait_ident as ::tomada::Contract>::__export_box(object), out)
            }
            fn decode(r: &mut ::tomada::__private::Reader<'_>) -> ::core::result::Result<Self, ::tomada::__private::WireError> {
                let channel = ::tomada::__private::decode_remote(r)?;
                ::core::result::Result::Ok(<dyn #trait_ident as ::tomada::Contract>::__remote_client(channel))
            }
        }

        // SAFETY: a `&dyn C` argument crosses as an `RObject` that borrows it for the
        // call; the receiving side's store is the client, dropped after the call.
        unsafe impl<'a> ::tomada::Arg for &'a dyn #trait_ident #impl_bounds {
            type Ffi = ::tomada::__private::RObject;
            type Store = #client;
            const DESC: ::tomada::__private::TypeRef = ::tomada::__private::TypeRef::new(
                &::tomada::__private::TypeDesc::generic("&", &[<dyn #trait_ident as ::tomada::Contract>::OBJECT]),
            );
            fn into_ffi(self) -> ::tomada::__private::RObject {
                // SAFETY: the borrow outlives the call, and so the `RObject`, which the
                // receiving side drops when the call returns.
                unsafe { <dyn #trait_ident as ::tomada::Contract>::__ref_into_object(self) }
            }
            unsafe fn receive(ffi: ::tomada::__private::RObject) -> #client {
                // SAFETY: made by this contract's object conversion (the caller's guarantee).
                unsafe { <dyn #trait_ident as ::tomada::Contract>::__object_into_client(ffi) }
            }
            unsafe fn view(store: &mut #client) -> &'a dyn #trait_ident {
                // SAFETY: the store outlives the call (the caller's guarantee).
                unsafe { &*(store as *const #client) }
            }
            fn encode(self, out: &mut ::std::vec::Vec<u8>) {
                // SAFETY: lent for the call: `remote_call` revokes it when the call returns,
                // while the borrow is still live.
                let exported = unsafe { <dyn #trait_ident as ::tomada::Contract>::__export_ref(self) };
                ::tomada::__private::encode_borrowed(exported, out)
            }
            unsafe fn decode(r: &mut ::tomada::__private::Reader<'_>) -> ::core::result::Result<#client, ::tomada::__private::WireError> {
                ::tomada::__private::decode_remote(r).map(<dyn #trait_ident as ::tomada::Contract>::__remote_client)
            }
        }
    }
}

/// The `Contract` items for objects.
pub(crate) fn contract_items(parts: &Parts, method_count: usize, args: &ContractArgs) -> TokenStream {
    let Parts { trait_ident, client, .. } = parts;
    let name = contract_name(parts, args);
    let object_static = format_ident!("__TOMADA_OBJECT_{}", trait_ident);
    let object = if parts.passes_objects {
        quote!(::tomada::__private::TypeRef::new(&#object_static))
    } else {
        quote! {
            ::tomada::__private::TypeRef::new(&::tomada::__private::TypeDesc::object(
                ::core::concat!("dyn ", #name),
                <Self as ::tomada::Contract>::NAME,
                <Self as ::tomada::Contract>::ABI,
                <Self as ::tomada::Contract>::DESCRIPTION.methods,
            ))
        }
    };
    quote! {
        const OBJECT: ::tomada::__private::TypeRef = #object;
        fn __box_into_object(object: ::std::boxed::Box<Self>) -> ::tomada::__private::RObject {
            <dyn #trait_ident>::__tomada_box_into_object(object)
        }
        fn __arc_into_object(object: ::std::sync::Arc<Self>) -> ::tomada::__private::RObject {
            <dyn #trait_ident>::__tomada_arc_into_object(object)
        }
        unsafe fn __ref_into_object(object: &Self) -> ::tomada::__private::RObject {
            // SAFETY: the caller keeps `object` alive as long as the `RObject`.
            unsafe { <dyn #trait_ident>::__tomada_ref_into_object(object) }
        }
        unsafe fn __object_into_client(object: ::tomada::__private::RObject) -> #client {
            // SAFETY: made by this contract's conversion (the caller's guarantee), with
            // all the contract's methods in its vtable.
            #client { raw: unsafe { ::tomada::__private::RawClient::of_object(object, #method_count, <Self as ::tomada::Contract>::MINOR) } }
        }
        fn __export_box(object: ::std::boxed::Box<Self>) -> ::tomada::__private::Exported {
            <dyn #trait_ident>::__tomada_box_export(object)
        }
        fn __export_arc(object: ::std::sync::Arc<Self>) -> ::tomada::__private::Exported {
            <dyn #trait_ident>::__tomada_arc_export(object)
        }
        unsafe fn __export_ref(object: &Self) -> ::tomada::__private::Exported {
            // SAFETY: the caller keeps `object` alive as long as the `Exported`.
            unsafe { <dyn #trait_ident>::__tomada_ref_export(object) }
        }
        fn __client_of(object: &Self) -> ::core::option::Option<&#client> {
            object.__tomada_client()
        }
        fn __remote_client(channel: ::std::sync::Arc<dyn ::tomada::__private::Channel>) -> #client {
            #client { raw: ::tomada::__private::RawClient::new(::tomada::__private::Target::Remote(channel), #method_count, <Self as ::tomada::Contract>::MINOR) }
        }
        fn __client_into_box(client: #client) -> ::std::boxed::Box<Self> {
            ::std::boxed::Box::new(client)
        }
        fn __client_into_arc(client: #client) -> ::std::sync::Arc<Self> {
            ::std::sync::Arc::new(client)
        }
    }
}

/// A call of the client `receiver` (an expression of type `&Client`) that gives the
/// method's declared result (`Result<_, CallError>`, or for an `async fn` a future of
/// it), where the client's public method gives handles instead: its generic call,
/// decoding the declared type. What the trait's impls on the client (and on the
/// default bodies' stand-in, see `fallback`) call.
pub(crate) fn declared_call(parts: &Parts, sig: &Sig, receiver: &TokenStream) -> TokenStream {
    let Parts { client, .. } = parts;
    let ident = &sig.method.ident;
    let locals = &sig.locals;
    let ret = &sig.method.ret;
    let lt = crate::parse::async_lifetime();
    match super::handle::host_form(ret) {
        None => quote!(#client::#ident(#receiver, #(#locals),*)),
        // (An async one's future, boxed before the `async` block holds it: that
        // block is `Send` for any lifetime of the objects in its result type, which
        // a `CallFuture` of them is not, its form being that of `'static` objects.)
        Some(_) if sig.method.is_async => {
            let helper = super::client::call_ident(sig);
            let ret = super::handle::with_static_objects(ret);
            quote! {{
                let call: ::tomada::BoxFuture<#lt, ::core::result::Result<#ret, ::tomada::CallError>> =
                    ::std::boxed::Box::pin(#receiver.#helper::<#ret>(#(#locals),*));
                call
            }}
        }
        Some(_) => {
            let helper = super::client::call_ident(sig);
            let ret = super::handle::with_static_objects(ret);
            quote!(#receiver.#helper::<#ret>(#(#locals),*))
        }
    }
}

/// The contract's name as tokens usable inside `concat!`.
fn contract_name(parts: &Parts, args: &ContractArgs) -> TokenStream {
    match &args.name {
        Some(n) => quote!(#n),
        None => {
            let t = parts.trait_ident.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #t))
        }
    }
}
