//! Procedural macros of [tomada](https://docs.rs/tomada): `#[contract]`,
//! `#[implement]` and `#[derive(Abi)]`. Use them through the `tomada` crate, which documents them;
//! the generated code refers to `::tomada`.
//!
//! The code is split by job: `parse` reads a contract trait into `parse::Method`s and
//! refuses what cannot cross (`types` holds the one list of what can); `contract`
//! emits the vtable, the client, the dispatch function, the objects and the
//! description, one generator per method; `derive` emits `Abi` for a struct
//! (`derive::record`) or an enum (`derive::variant`).

use proc_macro::TokenStream;
use syn::{DeriveInput, ItemImpl, ItemTrait, parse_macro_input};

mod contract;
mod derive;
mod implement;
mod parse;
mod types;

/// Turns a trait into a tomada plugin contract; documented on `tomada::contract`.
#[proc_macro_attribute]
pub fn contract(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(args as parse::ContractArgs);
    let item = parse_macro_input!(item as ItemTrait);
    contract::expand(args, item).into()
}

/// Rewrites the `async fn`s of a contract trait's impl into the form the trait holds;
/// documented on `tomada::implement`.
#[proc_macro_attribute]
pub fn implement(args: TokenStream, item: TokenStream) -> TokenStream {
    if !args.is_empty() {
        let args = proc_macro2::TokenStream::from(args);
        return syn::Error::new_spanned(args, "`#[tomada::implement]` takes no arguments").into_compile_error().into();
    }
    let item = parse_macro_input!(item as ItemImpl);
    implement::expand(item).into()
}

/// Derives `tomada::Abi` for a struct or an enum; documented on `tomada::Abi`.
#[proc_macro_derive(Abi, attributes(tomada))]
pub fn derive_abi(item: TokenStream) -> TokenStream {
    let item = parse_macro_input!(item as DeriveInput);
    derive::expand(item).unwrap_or_else(syn::Error::into_compile_error).into()
}
