//! `#[derive(Abi)]` for structs.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{DeriveInput, Fields};

use super::{as_abi, block_min, decode_block, encode_block, field_descs, fields, has_repr, native_fn, pattern, style};

pub(crate) fn expand(item: &DeriveInput, kind: &Fields) -> syn::Result<TokenStream> {
    let ident = &item.ident;
    let name = ident.to_string();
    let fields = fields(kind, &name)?;
    let ffi = format_ident!("__TomadaFfi{}", ident);
    let desc = format_ident!("__TOMADA_DESC");
    let tys: Vec<_> = fields.iter().map(|f| f.ty).collect();
    let locals: Vec<_> = fields.iter().map(|f| &f.local).collect();
    let abis: Vec<_> = tys.iter().map(|t| as_abi(t)).collect();
    let ffi_tys: Vec<_> = abis.iter().map(|a| quote!(#a::Ffi)).collect();
    let field_descs = field_descs(&fields);
    let style = style(kind);
    let pat = pattern(kind, &fields);
    let converted = fields.iter().zip(&abis).map(|(f, a)| {
        let (member, local) = (&f.member, &f.local);
        quote!(#member: #a::from_ffi(#local))
    });
    let build = match kind {
        Fields::Unit => quote!(Self),
        _ => quote!(Self { #(#converted),* }),
    };

    // The `#[repr(C)]` form is always a tuple struct of the fields' forms, in order
    // (a struct without fields crosses as one byte: C has no empty structs). Positional
    // fields keep an unsupported field type's error at the type, once.
    let indices: Vec<_> = (0..fields.len()).map(syn::Index::from).collect();
    let (ffi_def, to_ffi, from_ffi_pat) = if fields.is_empty() {
        (quote!(pub struct #ffi(u8);), quote!(#ffi(0)), quote!(_))
    } else {
        (
            quote!(pub struct #ffi(#(#ffi_tys,)*);),
            quote!(#ffi(#(#abis::into_ffi(#locals)),*)),
            quote!(#ffi(#(#locals),*)),
        )
    };
    let _ = &indices;
    let encode = encode_block(&fields, false);
    let encode_owned = encode_block(&fields, true);
    let decode = decode_block(&fields);
    let wire_min = block_min(&fields);
    let native = native_fn(fields.iter(), fields.iter().any(|f| f.since != 0) || has_repr(item));
    Ok(quote! {
        const _: () = {
            #[repr(C)]
            #[allow(non_camel_case_types, dead_code)]
            #ffi_def

            static #desc: ::tomada::__private::TypeDesc = ::tomada::__private::TypeDesc::record(
                #name,
                ::core::concat!(::core::module_path!(), "::", #name),
                #style,
                #field_descs,
            );

            // SAFETY: `Ffi` is `#[repr(C)]` of the fields' `Ffi` forms, converted field by
            // field by their own impls; the description names every field, type and
            // `since`, and the byte form is a block of the fields in order.
            #[automatically_derived]
            unsafe impl ::tomada::Abi for #ident {
                type Ffi = #ffi;
                const DESC: ::tomada::__private::TypeRef = ::tomada::__private::TypeRef::new(&#desc);
                const WIRE_MIN: usize = #wire_min;
                #native
                #[inline]
                fn into_ffi(self) -> #ffi {
                    let Self #pat = self;
                    #to_ffi
                }
                #[inline]
                #[allow(clippy::undocumented_unsafe_blocks)]
                unsafe fn from_ffi(ffi: #ffi) -> Self {
                    #[allow(unused_variables)]
                    let #from_ffi_pat = ffi;
                    // SAFETY: the caller guarantees `ffi` was made by `into_ffi` of a type
                    // with the same description, so each field by its type's `into_ffi`.
                    unsafe { #build }
                }
                #[inline]
                fn encode(&self, out: &mut ::std::vec::Vec<u8>) {
                    let Self #pat = self;
                    #encode
                }
                #[inline]
                fn encode_owned(self, out: &mut ::std::vec::Vec<u8>) {
                    let Self #pat = self;
                    #encode_owned
                }
                #[inline]
                fn decode(r: &mut ::tomada::__private::Reader<'_>) -> ::core::result::Result<Self, ::tomada::__private::WireError> {
                    #decode
                    ::core::result::Result::Ok(Self #pat)
                }
            }
        };
    })
}
