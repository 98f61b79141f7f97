//! `#[derive(Abi)]` for enums: unit (C-like), tuple and struct variants. The
//! `#[repr(C)]` form is a `#[repr(C, u8)]` (or `u16`) enum of the variants' fields'
//! forms (RFC 2195 fixes its layout); the byte form is the variant's index, then its
//! fields.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{DataEnum, DeriveInput, Error, Fields};

use super::{Field, as_abi, decode_block, encode_block, field_descs, fields, has_repr, native_fn, pattern, style};

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
    // `#[tomada(since = N)]` and `#[tomada(other)]` on variants.
    let mut marks = Vec::new();
    for (v, _) in &variants {
        let (mut since, mut other) = (0u32, false);
        for attr in v.attrs.iter().filter(|a| a.path().is_ident("tomada")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("since") {
                    let lit: syn::LitInt = meta.value()?.parse()?;
                    since = lit.base10_parse()?;
                    if since == 0 {
                        return Err(meta.error("`since` is the minor version that added the variant: 1 or more"));
                    }
                    Ok(())
                } else if meta.path.is_ident("other") {
                    other = true;
                    Ok(())
                } else {
                    Err(meta.error("unknown tomada variant attribute; expected `since = N` or `other`"))
                }
            })?;
        }
        if other && (!matches!(v.fields, Fields::Unit) || since != 0) {
            return Err(Error::new(
                v.ident.span(),
                format!(
                    "`#[tomada(other)]` variant `{}` must be a unit variant of the original enum (no fields, no `since`): it is what a variant this side does not know arrives as",
                    v.ident
                ),
            ));
        }
        marks.push((since, other));
    }
    let others: Vec<_> = variants.iter().zip(&marks).filter(|(_, m)| m.1).map(|((v, _), _)| v).collect();
    if others.len() > 1 {
        return Err(Error::new(
            others[1].ident.span(),
            format!("`{name}` has more than one `#[tomada(other)]` variant"),
        ));
    }
    let open = !others.is_empty();
    if !open && let Some(((v, _), _)) = variants.iter().zip(&marks).find(|(_, m)| m.0 > 0) {
        return Err(Error::new(
            v.ident.span(),
            format!(
                "variant `{}` has `since`, but `{name}` is a closed enum: a side that does not know the variant could not read it; give `{name}` a `#[tomada(other)]` unit variant (in a new major version: it changes the enum) and add variants with `since` after that",
                v.ident
            ),
        ));
    }
    // Wire numbers: by minor version, then in declaration order, so a variant keeps
    // its number in every later minor version wherever it is declared.
    let mut order: Vec<usize> = (0..variants.len()).collect();
    order.sort_by_key(|&i| marks[i].0);
    let mut number = vec![0u32; variants.len()];
    for (n, &i) in order.iter().enumerate() {
        number[i] = n as u32;
    }
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
    let mut descs = vec![TokenStream::new(); variants.len()];
    for (position, (v, fields)) in variants.iter().enumerate() {
        let vident = &v.ident;
        let vname = vident.to_string();
        let index = number[position];
        let (since, other) = marks[position];
        // A variant with fields writes them as a block, and says so in its number's
        // high bit, so a side that does not know the variant (of an open enum) can
        // skip it; a unit variant writes its number alone.
        let blocked = !fields.is_empty();
        let written = if blocked { quote!(#index | ::tomada::__private::VARIANT_BLOCK) } else { quote!(#index) };
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
        let (block, block_owned, read) = if blocked {
            (encode_block(fields, false), encode_block(fields, true), decode_block(fields))
        } else {
            (quote!(), quote!(), quote!())
        };
        encode.push(quote! {
            Self::#vident #pat => {
                ::tomada::__private::put_variant(out, #written);
                #block
            }
        });
        encode_owned.push(quote! {
            Self::#vident #pat => {
                ::tomada::__private::put_variant(out, #written);
                #block_owned
            }
        });
        let build = match &v.fields {
            Fields::Named(_) => quote!(Self::#vident { #(#members: #locals),* }),
            Fields::Unnamed(_) => quote!(Self::#vident(#(#locals),*)),
            Fields::Unit => quote!(Self::#vident),
        };
        let _ = &abis;
        let check = if blocked {
            quote!(if !__tomada_blocked {
                return ::core::result::Result::Err(::tomada::__private::bad_variant());
            })
        } else {
            quote!(if __tomada_blocked {
                ::tomada::__private::skip_block(r)?;
            })
        };
        decode.push(quote!(#index => { #check #read #build }));
        let vstyle = style(&v.fields);
        let fdescs = field_descs(fields);
        descs[index as usize] = quote!(::tomada::__private::VariantDesc { name: #vname, style: #vstyle, since: #since, other: #other, fields: #fdescs });
    }

    // A variant this side does not know: an open enum skips its block and reads it as
    // its `other` variant; a closed enum has no such variants.
    let unknown = match others.first() {
        Some(v) => {
            let o = &v.ident;
            quote!({
                if __tomada_blocked {
                    ::tomada::__private::skip_block(r)?;
                }
                Self::#o
            })
        }
        None => quote!(return ::core::result::Result::Err(::tomada::__private::bad_variant())),
    };
    let evolving = open
        || has_repr(item)
        || marks.iter().any(|m| m.0 != 0)
        || variants.iter().any(|(_, f)| f.iter().any(|f| f.since != 0));
    let native = native_fn(variants.iter().flat_map(|(_, f)| f.iter()), evolving);
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
            // description names every variant (in wire order, with `since` and `other`),
            // field and type; the byte form checks the variant number.
            #[automatically_derived]
            unsafe impl ::tomada::Abi for #ident {
                type Ffi = #ffi;
                const DESC: ::tomada::__private::TypeRef = ::tomada::__private::TypeRef::new(&#desc);
                const WIRE_MIN: usize = 4;
                #native
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
                    let __tomada_number = r.variant()?;
                    let __tomada_blocked = __tomada_number & ::tomada::__private::VARIANT_BLOCK != 0;
                    ::core::result::Result::Ok(match __tomada_number & !::tomada::__private::VARIANT_BLOCK {
                        #(#decode)*
                        _ => #unknown,
                    })
                }
            }
        };
    })
}
