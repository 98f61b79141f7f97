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
}

/// The fields, checked: no borrows, nothing that can never cross.
pub(crate) fn fields<'a>(fields: &'a Fields, owner: &str) -> syn::Result<Vec<Field<'a>>> {
    let list: Vec<Field> = match fields {
        Fields::Named(named) => named
            .named
            .iter()
            .map(|f| {
                let i = f.ident.as_ref().expect("named field");
                Field {
                    member: quote!(#i),
                    local: format_ident!("__tomada_{}", i, span = f.ty.span()),
                    name: i.to_string(),
                    ty: &f.ty,
                }
            })
            .collect(),
        Fields::Unnamed(unnamed) => unnamed
            .unnamed
            .iter()
            .enumerate()
            .map(|(n, f)| {
                let i = syn::Index::from(n);
                Field {
                    member: quote!(#i),
                    local: format_ident!("__tomada_{}", n, span = f.ty.span()),
                    name: n.to_string(),
                    ty: &f.ty,
                }
            })
            .collect(),
        Fields::Unit => Vec::new(),
    };
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
        let (name, ty) = (&f.name, f.ty);
        quote_spanned!(ty.span()=> ::tomada::__private::FieldDesc { name: #name, ty: <#ty as ::tomada::Abi>::DESC })
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
