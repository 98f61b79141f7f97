//! `#[derive(Abi)]`, by shape: [`record`] for structs, [`variant`] for enums. Both
//! emit, inside one anonymous `const` block (so nothing generated is nameable or
//! documented): the `#[repr(C)]` form, the description as a `static` (statics may
//! refer to each other, so recursive types describe themselves), and the `Abi` impl.

pub(crate) mod record;
pub(crate) mod variant;

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Error, Fields, Ident, Type};

use crate::parse::contains_reference;
use crate::types::{self, Place};

pub(crate) fn expand(item: DeriveInput) -> syn::Result<TokenStream> {
    if !item.generics.params.is_empty() {
        return Err(Error::new(
            item.generics.span(),
            "`#[derive(tomada::Abi)]` types cannot be generic or borrow: they must own their data; write one type per use (`struct Page { items: Vec<Item> }`)",
        ));
    }
    match &item.data {
        Data::Struct(data) => record::expand(&item, &data.fields),
        Data::Enum(data) => variant::expand(&item, data),
        Data::Union(u) => Err(Error::new(
            u.union_token.span(),
            "`#[derive(tomada::Abi)]` does not support unions: which field is live cannot cross; use an enum",
        )),
    }
}

/// A field of a struct or of an enum variant.
pub(crate) struct Field<'a> {
    /// How the Rust value names it: `name` or `0`.
    pub(crate) member: TokenStream,
    /// A local variable for it, for patterns, spanned at the field's type (so an
    /// unsupported type's errors all land there, and are reported once).
    pub(crate) local: Ident,
    /// Its name in the description: `name` or `0`.
    pub(crate) name: String,
    pub(crate) ty: &'a Type,
    /// The minor version that appended it (`#[tomada(since = N)]`), 0 for the original
    /// fields.
    pub(crate) since: u32,
    /// What an older side's value arrives with (`#[tomada(since = N, default = expr)]`;
    /// `Default::default()` without it).
    pub(crate) default: Option<syn::Expr>,
}

/// `#[tomada(since = N, default = expr)]` on a field.
fn field_attrs(attrs: &[syn::Attribute], what: &str) -> syn::Result<(u32, Option<syn::Expr>)> {
    let (mut since, mut default): (u32, Option<syn::Expr>) = (0, None);
    for attr in attrs.iter().filter(|a| a.path().is_ident("tomada")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("since") {
                let lit: syn::LitInt = meta.value()?.parse()?;
                since = lit.base10_parse()?;
                if since == 0 {
                    return Err(meta.error(format!(
                        "`since` is the minor version that appended {what}: 1 or more (the original fields have none)"
                    )));
                }
                Ok(())
            } else if meta.path.is_ident("default") {
                default = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta.error("unknown tomada field attribute; expected `since = N` or `default = expr`"))
            }
        })?;
    }
    if let (0, Some(d)) = (since, &default) {
        return Err(Error::new(
            d.span(),
            format!("`default` is what an older side's value arrives with, so it needs `since = N` on {what}"),
        ));
    }
    Ok((since, default))
}

/// The fields, checked: no borrows, nothing that can never cross.
pub(crate) fn fields<'a>(fields: &'a Fields, owner: &str) -> syn::Result<Vec<Field<'a>>> {
    let list: Vec<Field> = match fields {
        Fields::Named(named) => named
            .named
            .iter()
            .map(|f| {
                let i = f.ident.as_ref().expect("named field");
                let (since, default) = field_attrs(&f.attrs, &format!("field `{i}` of `{owner}`"))?;
                Ok(Field {
                    member: quote!(#i),
                    local: format_ident!("__tomada_{}", i, span = f.ty.span()),
                    name: i.to_string(),
                    ty: &f.ty,
                    since,
                    default,
                })
            })
            .collect::<syn::Result<_>>()?,
        Fields::Unnamed(unnamed) => unnamed
            .unnamed
            .iter()
            .enumerate()
            .map(|(n, f)| {
                let i = syn::Index::from(n);
                let (since, default) = field_attrs(&f.attrs, &format!("field {n} of `{owner}`"))?;
                Ok(Field {
                    member: quote!(#i),
                    local: format_ident!("__tomada_{}", n, span = f.ty.span()),
                    name: n.to_string(),
                    ty: &f.ty,
                    since,
                    default,
                })
            })
            .collect::<syn::Result<_>>()?,
        Fields::Unit => Vec::new(),
    };
    // Appended fields go at the end, in version order: an older side knows a prefix.
    for pair in list.windows(2) {
        if pair[1].since < pair[0].since {
            return Err(Error::new(
                pair[1].ty.span(),
                format!(
                    "field `{}` of `{owner}` (minor {}) comes after `{}` (minor {}): fields appended in a minor version go at the end, in version order; give it `#[tomada(since = {})]` or move it up",
                    pair[1].name, pair[1].since, pair[0].name, pair[0].since, pair[0].since
                ),
            ));
        }
    }
    for f in &list {
        let what = format!("field `{}` of `{owner}`", f.name);
        if contains_reference(f.ty) {
            types::check(f.ty, Place::Field, &what)?;
            return Err(Error::new(
                f.ty.span(),
                format!("{what} borrows: `#[derive(tomada::Abi)]` types must own their data (use `String`, `Vec<T>`)"),
            ));
        }
        types::check(f.ty, Place::Field, &what)?;
    }
    Ok(list)
}

/// `<T as ::tomada::Abi>` for a field's type, spanned at the type as written: every
/// use of an unsupported field type then fails with the same error at the same place,
/// which rustc reports once.
pub(crate) fn as_abi(ty: &Type) -> TokenStream {
    quote_spanned!(ty.span()=> <#ty as ::tomada::Abi>)
}

/// `FieldDesc`s for the description.
pub(crate) fn field_descs(fields: &[Field]) -> TokenStream {
    let descs = fields.iter().map(|f| {
        let (name, ty, since) = (&f.name, f.ty, f.since);
        quote_spanned!(ty.span()=> ::tomada::__private::FieldDesc { name: #name, since: #since, ty: <#ty as ::tomada::Abi>::DESC })
    });
    quote!(&[#(#descs),*])
}

/// The `Style` of a field list.
pub(crate) fn style(fields: &Fields) -> TokenStream {
    match fields {
        Fields::Named(_) => quote!(::tomada::__private::Style::Named),
        Fields::Unnamed(_) => quote!(::tomada::__private::Style::Tuple),
        Fields::Unit => quote!(::tomada::__private::Style::Unit),
    }
}

/// A pattern binding every field to its local: `{ a: __tomada_a }`, `(__tomada_0)`.
pub(crate) fn pattern(kind: &Fields, fields: &[Field]) -> TokenStream {
    let locals = fields.iter().map(|f| &f.local);
    let members = fields.iter().map(|f| &f.member);
    match kind {
        Fields::Named(_) => quote!({ #(#members: #locals),* }),
        Fields::Unnamed(_) => quote!((#(#locals),*)),
        Fields::Unit => quote!(),
    }
}

/// Encodes fields as one block: a length, then each field's byte form. A reader that
/// knows fewer fields skips the rest; one that knows more gives them their defaults.
pub(crate) fn encode_block(fields: &[Field], owned: bool) -> TokenStream {
    let calls = fields.iter().map(|f| {
        let (a, local) = (as_abi(f.ty), &f.local);
        if owned { quote!(#a::encode_owned(#local, out);) } else { quote!(#a::encode(#local, out);) }
    });
    quote! {
        let __tomada_at = ::tomada::__private::begin_block(out);
        #(#calls)*
        ::tomada::__private::end_block(out, __tomada_at);
    }
}

/// Decodes a block written by [`encode_block`] into the fields' locals: fields past
/// its end are appended ones (`since`) and take their defaults; bytes past the fields
/// this side knows are a newer side's appended fields, skipped.
pub(crate) fn decode_block(fields: &[Field]) -> TokenStream {
    let reads = fields.iter().map(|f| {
        let (a, local) = (as_abi(f.ty), &f.local);
        if f.since == 0 {
            quote!(let #local = #a::decode(&mut __tomada_block)?;)
        } else {
            let ty = f.ty;
            let default = match &f.default {
                Some(e) => quote_spanned!(e.span()=> { let __tomada_default: #ty = #e; __tomada_default }),
                None => quote_spanned!(ty.span()=> <#ty as ::tomada::__private::SinceDefault>::since_default()),
            };
            quote! {
                let #local = if __tomada_block.remaining().is_empty() { #default } else { #a::decode(&mut __tomada_block)? };
            }
        }
    });
    quote! {
        #[allow(unused_mut, unused_variables)]
        let mut __tomada_block = ::tomada::__private::block(r)?;
        #(#reads)*
        ::tomada::__private::end_block_read(r, __tomada_block);
    }
}

/// The least bytes a block of `fields` takes: its length, and the original fields.
pub(crate) fn block_min(fields: &[Field]) -> TokenStream {
    let mins = fields.iter().filter(|f| f.since == 0).map(|f| {
        let a = as_abi(f.ty);
        quote!(+ #a::WIRE_MIN)
    });
    quote!(8 #(#mins)*)
}

/// `Abi::native` for a derived type: whether all of `fields` are native, worked out
/// once (see `tomada::abi::native`); never for a type that evolves (`evolving`: a
/// field with `since`, an open enum, or a `#[repr]`, which the description does not
/// record), whose two sides may lay it out differently.
pub(crate) fn native_fn<'a>(fields: impl Iterator<Item = &'a Field<'a>>, evolving: bool) -> TokenStream {
    if evolving {
        return quote! {
            #[inline(always)]
            fn native() -> bool {
                false
            }
        };
    }
    let abis = fields.map(|f| as_abi(f.ty));
    quote! {
        #[inline(always)]
        fn native() -> bool {
            static __TOMADA_NATIVE: ::tomada::__private::AtomicU8 = ::tomada::__private::AtomicU8::new(0);
            ::tomada::__private::native::resolve(&__TOMADA_NATIVE, || true #(&& #abis::native())*)
        }
    }
}

/// Whether the type has a `#[repr(...)]`: its layout then depends on something its
/// description does not say, so it is never native.
pub(crate) fn has_repr(item: &DeriveInput) -> bool {
    item.attrs.iter().any(|a| a.path().is_ident("repr"))
}
