//! Plugin side of isolated calls: one function, exported in the descriptor, that
//! reads a method number and the arguments' bytes, calls the method under
//! `catch_unwind`, and writes the result's bytes. The process that loads the plugin
//! needs no knowledge of any contract.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::{Parts, Sig};

pub(crate) fn emit(parts: &Parts, sigs: &[Sig]) -> TokenStream {
    let Parts { trait_ident, bounds, .. } = parts;
    let arms = sigs.iter().map(|sig| {
        let ident = &sig.method.ident;
        let method_no = sig.index as u32;
        let tys: Vec<_> = sig.method.args.iter().map(|a| &a.ty).collect();
        let stores: Vec<_> = sig.locals.iter().map(|l| format_ident!("{}_store", l)).collect();
        let ret = &sig.method.ret;
        if sig.method.is_async {
            return quote! {
                #method_no => ::tomada::__private::serve_async::<#ret>(out, panic, |cancel| {
                    #(let mut #stores = <#tys as ::tomada::Arg>::decode(&mut reader)?;)*
                    reader.finish()?;
                    ::core::result::Result::Ok(::tomada::__private::block_on(
                        this.#ident(#(<#tys as ::tomada::Arg>::view(&mut #stores)),*),
                        cancel,
                    ))
                }),
            };
        }
        quote! {
            #method_no => ::tomada::__private::serve_as::<#ret>(out, panic, alone, || {
                #(let mut #stores = <#tys as ::tomada::Arg>::decode(&mut reader)?;)*
                reader.finish()?;
                ::core::result::Result::Ok(this.#ident(#(<#tys as ::tomada::Arg>::view(&mut #stores)),*))
            }),
        }
    });
    quote! {
        #[allow(clippy::all, clippy::pedantic, clippy::nursery)]
        impl dyn #trait_ident where #bounds {
            /// Plugin side of a byte-level call (isolated mode).
            #[doc(hidden)]
            #[allow(unused_mut, clippy::undocumented_unsafe_blocks)]
            pub unsafe extern "C" fn __tomada_dispatch<T: #trait_ident>(
                this: *const ::core::ffi::c_void,
                method: u32,
                args: ::tomada::__private::RSlice,
                out: *mut ::tomada::__private::RVec,
                panic: *mut ::tomada::__private::RVec,
            ) -> ::tomada::__private::Status {
                // SAFETY: the runner calls with the instance this plugin's `create`
                // made (a `T`), encoded arguments that live for the call (so do the
                // stores that borrow them), and writable `out`/`panic`; each store is
                // viewed once.
                unsafe {
                    let this = &*this.cast::<T>();
                    let mut reader = ::tomada::__private::Reader::new(args.as_bytes());
                    if method == ::tomada::__private::CANCEL_METHOD {
                        return ::tomada::__private::cancel_dispatch(args, out, panic);
                    }
                    // (A caller that read `flags::BYTES_ALONE` may ask for byte strings'
                    // bytes alone: an async method answers in its byte form all the same.)
                    let (method, alone) = ::tomada::__private::answer_form(method);
                    match method {
                        #(#arms)*
                        other => ::tomada::__private::unknown_method(other, panic),
                    }
                }
            }
        }
    }
}
