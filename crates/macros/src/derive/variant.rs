//! `#[derive(Abi)]` for enums: unit (C-like), tuple and struct variants. The
//! `#[repr(C)]` form is a `#[repr(C, u8)]` (or `u16`) enum of the variants' fields'
//! forms (RFC 2195 fixes its layout); the byte form is the variant's index, then its
//! fields.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{DataEnum, DeriveInput, Error, Fields};

use super::{Field, as_abi, field_descs, fields, pattern, style};

pub(crate) fn expand(item: &DeriveInput, data: &DataEnum) -> syn::Result<TokenStream> {
    let ident = &item.ident;
    let name = ident.to_string();
    if data.variants.is_empty() {
        return Err(Error::new(
            ident.span(),
            format!("`{name}` has no variants, so no value of it can ever cross; use `()` instead"),
        ));
    }
    let ffi = format_ident!("__TomadaFfi{}", ident);
    let desc = format_ident!("__TOMADA_DESC");
    let variants: Vec<(&syn::Variant, Vec<Field>)> = data
        .variants
        .iter()
        .map(|v| fields(&v.fields, &format!("{name}::{}", v.ident)).map(|f| (v, f)))
        .collect::<syn::Result<_>>()?;
    let tag = if variants.len() <= 256 { quote!(u8) } else { quote!(u16) };
    // A fieldless enum is C-like: `repr(u8)`; one with fields, `repr(C, u8)` (RFC 2195).
    let repr = if variants.iter().all(|(_, f)| f.is_empty()) { quote!(#tag) } else { quote!(C, #tag) };
    if variants.len() > u16::MAX as usize {
        return Err(Error::new(ident.span(), "an enum crossing a plugin boundary may have at most 65535 variants"));
    }

    let mut ffi_variants = Vec::new();
    let mut to_ffi = Vec::new();
    let mut from_ffi = Vec::new();
    let mut encode = Vec::new();
    let mut encode_owned = Vec::new();
    let mut decode = Vec::new();
    let mut descs = Vec::new();
    for (index, (v, fields)) in variants.iter().enumerate() {
        let vident = &v.ident;
        let vname = vident.to_string();
        let index = index as u32;
        let pat = pattern(&v.fields, fields);
        let locals: Vec<_> = fields.iter().map(|f| &f.local).collect();
        let members: Vec<_> = fields.iter().map(|f| &f.member).collect();
        let abis: Vec<_> = fields.iter().map(|f| as_abi(f.ty)).collect();
        let ffi_tys = abis.iter().map(|a| quote!(#a::Ffi));
        let (ffi_fields, to, from) = match &v.fields {
            Fields::Named(_) => (
                quote!({ #(#members: #ffi_tys),* }),
                quote!({ #(#members: #abis::into_ffi(#locals)),* }),
                quote!({ #(#members: #abis::from_ffi(#locals)),* }),
            ),
            Fields::Unnamed(_) => (
                quote!((#(#ffi_tys),*)),
                quote!((#(#abis::into_ffi(#locals)),*)),
                quote!((#(#abis::from_ffi(#locals)),*)),
            ),
            Fields::Unit => (quote!(), quote!(), quote!()),
        };
        ffi_variants.push(quote!(#vident #ffi_fields,));
        to_ffi.push(quote!(Self::#vident #pat => #ffi::#vident #to,));
        from_ffi.push(quote!(#ffi::#vident #pat => Self::#vident #from,));
        encode.push(quote! {
            Self::#vident #pat => {
                ::tomada::__private::put_variant(out, #index);
                #(#abis::encode(#locals, out);)*
            }
        });
        encode_owned.push(quote! {
            Self::#vident #pat => {
                ::tomada::__private::put_variant(out, #index);
                #(#abis::encode_owned(#locals, out);)*
            }
        });
        let build = match &v.fields {
            Fields::Named(_) => quote!(Self::#vident { #(#members: #abis::decode(r)?),* }),
            Fields::Unnamed(_) => quote!(Self::#vident(#(#abis::decode(r)?),*)),
            Fields::Unit => quote!(Self::#vident),
        };
        decode.push(quote!(#index => #build,));
        let vstyle = style(&v.fields);
        let fdescs = field_descs(fields);
        descs.push(quote!(::tomada::__private::VariantDesc { name: #vname, style: #vstyle, fields: #fdescs }));
    }

    Ok(quote! {
        const _: () = {
            #[repr(#repr)]
            #[allow(non_camel_case_types, dead_code)]
            pub enum #ffi {
                #(#ffi_variants)*
            }

            static #desc: ::tomada::__private::TypeDesc = ::tomada::__private::TypeDesc::variant(
                #name,
                ::core::concat!(::core::module_path!(), "::", #name),
                &[#(#descs),*],
            );

            // SAFETY: `Ffi` is a `#[repr(C, u8/u16)]` enum with the same variants, in the
            // same order, of the fields' `Ffi` forms, converted by their own impls; the
            // description names every variant, field and type; the byte form checks
            // the variant index.
            #[automatically_derived]
            unsafe impl ::tomada::Abi for #ident {
                type Ffi = #ffi;
                const DESC: ::tomada::__private::TypeRef = ::tomada::__private::TypeRef::new(&#desc);
                const WIRE_MIN: usize = 4;
                #[inline]
                fn into_ffi(self) -> #ffi {
                    match self {
                        #(#to_ffi)*
                    }
                }
                #[inline]
                #[allow(clippy::undocumented_unsafe_blocks)]
                unsafe fn from_ffi(ffi: #ffi) -> Self {
                    // SAFETY: the caller guarantees `ffi` was made by `into_ffi` of a type
                    // with the same description, so each field by its type's `into_ffi`.
                    unsafe {
                        match ffi {
                            #(#from_ffi)*
                        }
                    }
                }
                #[inline]
                fn encode(&self, out: &mut ::std::vec::Vec<u8>) {
                    match self {
                        #(#encode)*
                    }
                }
                #[inline]
                fn encode_owned(self, out: &mut ::std::vec::Vec<u8>) {
                    match self {
                        #(#encode_owned)*
                    }
                }
                #[inline]
                fn decode(r: &mut ::tomada::__private::Reader<'_>) -> ::core::result::Result<Self, ::tomada::__private::WireError> {
                    ::core::result::Result::Ok(match r.variant()? {
                        #(#decode)*
                        _ => return ::core::result::Result::Err(::tomada::__private::bad_variant()),
                    })
                }
            }
        };
    })
}
