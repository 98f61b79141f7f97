//! Procedural macros of [tomada](https://docs.rs/tomada): `#[contract]` and
//! `#[derive(Abi)]`. Use them through the `tomada` crate, which documents them;
//! the generated code refers to `::tomada`.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{
    Data, DeriveInput, Error, Expr, Fields, FnArg, Ident, ItemTrait, LitStr, Pat, ReturnType, Token, TraitItem,
    TraitItemFn, Type, TypeParamBound, parse_macro_input, parse_quote,
};

/// Turns a trait into a tomada plugin contract; documented on `tomada::contract`.
#[proc_macro_attribute]
pub fn contract(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = parse_macro_input!(args as ContractArgs);
    let item = parse_macro_input!(item as ItemTrait);
    contract_impl(args, item).unwrap_or_else(Error::into_compile_error).into()
}

/// Derives `tomada::Abi` for a struct; documented on `tomada::Abi`.
#[proc_macro_derive(Abi)]
pub fn derive_abi(item: TokenStream) -> TokenStream {
    let item = parse_macro_input!(item as DeriveInput);
    derive_abi_impl(item).unwrap_or_else(Error::into_compile_error).into()
}

struct ContractArgs {
    abi: Expr,
    name: Option<LitStr>,
}

impl Parse for ContractArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut abi = None;
        let mut name = None;
        let pairs = Punctuated::<syn::MetaNameValue, Token![,]>::parse_terminated(input)?;
        for pair in pairs {
            if pair.path.is_ident("abi") {
                abi = Some(pair.value);
            } else if pair.path.is_ident("name") {
                match pair.value {
                    Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => name = Some(s),
                    other => {
                        return Err(Error::new(other.span(), "`name` must be a string literal"));
                    }
                }
            } else {
                return Err(Error::new(pair.path.span(), "unknown argument; expected `abi = N` or `name = \"...\"`"));
            }
        }
        let abi = abi.ok_or_else(|| {
            Error::new(
                Span::call_site(),
                "missing `abi = N`: the contract's major version, e.g. #[tomada::contract(abi = 1)]",
            )
        })?;
        Ok(ContractArgs { abi, name })
    }
}

/// Replaces every lifetime (named or elided) with `'static`, so a type can be named
/// in a struct field or a `const`.
struct StaticLifetimes;

impl VisitMut for StaticLifetimes {
    fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
        r.lifetime = Some(parse_quote!('static));
        syn::visit_mut::visit_type_reference_mut(self, r);
    }
    fn visit_lifetime_mut(&mut self, l: &mut syn::Lifetime) {
        *l = parse_quote!('static);
    }
}

fn with_static_lifetimes(ty: &Type) -> Type {
    let mut ty = ty.clone();
    StaticLifetimes.visit_type_mut(&mut ty);
    ty
}

/// Catches the common mistakes with a message better than "trait not implemented".
fn check_boundary_type(ty: &Type, position: &str) -> syn::Result<()> {
    match ty {
        Type::Reference(r) => {
            if r.mutability.is_some() {
                return Err(Error::new(
                    ty.span(),
                    format!(
                        "`&mut` cannot cross a tomada plugin boundary ({position}); pass the value and return the new one"
                    ),
                ));
            }
            let inner = r.elem.to_token_stream().to_string().replace(' ', "");
            match inner.as_str() {
                "str" | "[u8]" => Ok(()),
                "String" => Err(Error::new(ty.span(), format!("use `&str` instead of `&String` ({position})"))),
                "Vec<u8>" => Err(Error::new(ty.span(), format!("use `&[u8]` instead of `&Vec<u8>` ({position})"))),
                _ => Err(Error::new(
                    ty.span(),
                    format!(
                        "`{}` cannot cross a tomada plugin boundary ({position}): only `&str` and `&[u8]` may be borrowed; pass other types by value",
                        ty.to_token_stream().to_string().replace(" & ", "&")
                    ),
                )),
            }
        }
        Type::ImplTrait(_) | Type::TraitObject(_) => Err(Error::new(
            ty.span(),
            format!(
                "trait objects and `impl Trait` cannot cross a tomada plugin boundary ({position}); use a concrete type"
            ),
        )),
        Type::Ptr(_) => Err(Error::new(
            ty.span(),
            format!(
                "raw pointers cannot cross a tomada plugin boundary ({position}); use `&[u8]`, `Vec<u8>` or a value"
            ),
        )),
        Type::Paren(p) => check_boundary_type(&p.elem, position),
        _ => Ok(()),
    }
}

/// The first lifetime written out in `ty`, other than `'_`.
fn named_lifetime(ty: &Type) -> Option<syn::Lifetime> {
    struct Finder(Option<syn::Lifetime>);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_lifetime(&mut self, l: &'ast syn::Lifetime) {
            if l.ident != "_" && self.0.is_none() {
                self.0 = Some(l.clone());
            }
        }
    }
    let mut f = Finder(None);
    syn::visit::Visit::visit_type(&mut f, ty);
    f.0
}

fn contains_reference(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_reference(&mut self, _: &'ast syn::TypeReference) {
            self.0 = true;
        }
        fn visit_lifetime(&mut self, _: &'ast syn::Lifetime) {
            self.0 = true;
        }
    }
    let mut f = Finder(false);
    syn::visit::Visit::visit_type(&mut f, ty);
    f.0
}

struct Method {
    ident: Ident,
    attrs: Vec<syn::Attribute>,
    since: u32,
    args: Vec<(Ident, Type)>,
    ret: Type,
}

/// `#[tomada(since = N)]` on a method, if any.
fn since_of(attrs: &[syn::Attribute]) -> syn::Result<u32> {
    let mut since = 0;
    for attr in attrs.iter().filter(|a| a.path().is_ident("tomada")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("since") {
                let lit: syn::LitInt = meta.value()?.parse()?;
                since = lit.base10_parse()?;
                if since == 0 {
                    return Err(meta.error("`since` is a minor version that added the method: 1 or more"));
                }
                Ok(())
            } else {
                Err(meta.error("unknown tomada method attribute; expected `since = N`"))
            }
        })?;
    }
    Ok(since)
}

/// A type as the contract author wrote it, without the token stream's spaces.
fn type_text(ty: &Type) -> String {
    let mut s = ty.to_token_stream().to_string();
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        ("& ", "&"),
        (" ,", ","),
        (" :: ", "::"),
        (":: ", "::"),
        ("[ ", "["),
        (" ]", "]"),
        ("( ", "("),
        (" )", ")"),
    ] {
        while s.contains(from) {
            s = s.replace(from, to);
        }
    }
    s
}

fn parse_method(f: &TraitItemFn) -> syn::Result<Method> {
    let sig = &f.sig;
    let name = &sig.ident;
    if let Some(body) = &f.default {
        return Err(Error::new(
            body.span(),
            "contract methods cannot have a default body: every plugin implements them",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(Error::new(
            sig.generics.span(),
            format!(
                "contract method `{name}` cannot be generic (lifetimes included); a plugin boundary needs one concrete signature"
            ),
        ));
    }
    if let Some(a) = &sig.asyncness {
        return Err(Error::new(a.span(), format!("contract method `{name}` cannot be `async`")));
    }
    if let Some(u) = &sig.unsafety {
        return Err(Error::new(u.span(), format!("contract method `{name}` cannot be `unsafe`")));
    }
    if let Some(v) = &sig.variadic {
        return Err(Error::new(v.span(), format!("contract method `{name}` cannot be variadic")));
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() && r.colon_token.is_none() => {}
        other => {
            let span = other.map_or_else(|| sig.span(), |o| o.span());
            return Err(Error::new(
                span,
                format!("contract method `{name}` must take `&self` (a plugin instance is shared by all callers)"),
            ));
        }
    }
    let mut args = Vec::new();
    for (i, input) in inputs.enumerate() {
        let FnArg::Typed(pt) = input else { unreachable!("only the first argument can be a receiver") };
        let ident = match &*pt.pat {
            Pat::Ident(p) => format_ident!("__tomada_arg_{}", p.ident),
            _ => format_ident!("__tomada_arg{i}"),
        };
        check_boundary_type(&pt.ty, &format!("argument {} of `{name}`", i + 1))?;
        if let Some(lifetime) = named_lifetime(&pt.ty) {
            // A `&'static str` argument would let the plugin keep a borrow of the
            // caller's (or, isolated, the channel's) buffer past the call.
            return Err(Error::new(
                lifetime.span(),
                format!(
                    "argument {} of `{name}` names the lifetime `{lifetime}`: borrowed arguments live only for the call; write `&str` / `&[u8]` (or take `String` / `Vec<u8>` to keep the value)",
                    i + 1
                ),
            ));
        }
        args.push((ident, (*pt.ty).clone()));
    }
    let ret = match &sig.output {
        ReturnType::Default => parse_quote!(()),
        ReturnType::Type(_, ty) => {
            if contains_reference(ty) {
                return Err(Error::new(
                    ty.span(),
                    format!(
                        "contract method `{name}` cannot return a borrow: it would point into the plugin; return `String` or `Vec<u8>`"
                    ),
                ));
            }
            check_boundary_type(ty, &format!("result of `{name}`"))?;
            (**ty).clone()
        }
    };
    let attrs = f.attrs.iter().filter(|a| a.path().is_ident("doc")).cloned().collect();
    let since = since_of(&f.attrs)?;
    Ok(Method { ident: name.clone(), attrs, since, args, ret })
}

fn contract_impl(args: ContractArgs, mut item: ItemTrait) -> syn::Result<TokenStream2> {
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        return Err(Error::new(item.generics.span(), "a contract trait cannot be generic"));
    }
    if let Some(u) = &item.unsafety {
        return Err(Error::new(u.span(), "a contract trait cannot be `unsafe`"));
    }
    let mut methods: Vec<Method> = Vec::new();
    for trait_item in &mut item.items {
        match trait_item {
            TraitItem::Fn(f) => {
                let m = parse_method(f)?;
                if let Some(prev) = methods.last()
                    && m.since < prev.since
                {
                    return Err(Error::new(
                        f.sig.ident.span(),
                        format!(
                            "method `{}` (minor {}) comes after `{}` (minor {}): methods of a minor version are appended at the end of the trait, in version order",
                            m.ident, m.since, prev.ident, prev.since
                        ),
                    ));
                }
                // `#[tomada(...)]` is ours; the trait itself must not keep it.
                f.attrs.retain(|a| !a.path().is_ident("tomada"));
                methods.push(m);
            }
            other => {
                return Err(Error::new(
                    other.span(),
                    "a contract trait may only contain methods (no associated types or consts)",
                ));
            }
        }
    }
    let minor = methods.iter().map(|m| m.since).max().unwrap_or(0);

    // Plugin instances are shared by every thread of the host.
    for bound in [quote!(::core::marker::Send), quote!(::core::marker::Sync), quote!('static)] {
        let bound: TypeParamBound = syn::parse2(bound)?;
        item.supertraits.push(bound);
    }
    if item.colon_token.is_none() {
        item.colon_token = Some(Default::default());
    }

    let vis = &item.vis;
    let trait_ident = &item.ident;
    let vtable = format_ident!("{}VTable", trait_ident);
    let client = format_ident!("{}Client", trait_ident);
    let abi = &args.abi;
    let name = match &args.name {
        Some(n) => quote!(#n),
        None => {
            let t = trait_ident.to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #t))
        }
    };

    let mut vtable_fields = Vec::new();
    let mut client_methods = Vec::new();
    let mut shims = Vec::new();
    let mut vtable_inits = Vec::new();
    let mut fingerprint = Vec::new();
    let mut method_descs = Vec::new();
    let mut remote_shims = Vec::new();
    let mut remote_inits = Vec::new();
    let mut dispatch_arms = Vec::new();
    let method_count = methods.len() as u64;

    for (index, m) in methods.iter().enumerate() {
        let ident = &m.ident;
        let shim = format_ident!("__tomada_shim_{}", ident);
        let ret = &m.ret;
        let ret_static = with_static_lifetimes(ret);
        let arg_idents: Vec<_> = m.args.iter().map(|(i, _)| i).collect();
        let arg_tys: Vec<_> = m.args.iter().map(|(_, t)| t).collect();
        let arg_tys_static: Vec<_> = m.args.iter().map(|(_, t)| with_static_lifetimes(t)).collect();
        let ffi_args: Vec<_> =
            arg_tys_static.iter().map(|t| quote_spanned!(t.span()=> <#t as ::tomada::Abi>::Ffi)).collect();
        let ret_ffi = quote_spanned!(ret.span()=> <#ret_static as ::tomada::Abi>::Ffi);
        let attrs = &m.attrs;
        let name_str = ident.to_string();
        let arg_count = m.args.len() as u64;
        let since = m.since;
        // Methods of the original contract are in every compatible plugin; later
        // ones may be missing from a plugin built against an older minor version.
        let provided_check = (since > 0).then(|| {
            quote! {
                if #index >= self.provided {
                    return ::core::result::Result::Err(::tomada::CallError::NotProvided {
                        method: #name_str,
                        added_in: ::std::format!("{}.{}", <dyn #trait_ident as ::tomada::Contract>::ABI, #since),
                        plugin_version: ::std::format!("{}.{}", <dyn #trait_ident as ::tomada::Contract>::ABI, self.plugin_minor),
                    });
                }
            }
        });

        vtable_fields.push(quote! {
            #[doc = ::core::concat!("Shim of `", #name_str, "`.")]
            pub #ident: unsafe extern "C" fn(
                *const ::core::ffi::c_void,
                #(#ffi_args,)*
                *mut #ret_ffi,
                *mut ::tomada::ffi::RVec,
            ) -> ::tomada::ffi::Status,
        });
        vtable_inits.push(quote!(#ident: Self::#shim::<T>,));
        client_methods.push(quote! {
            #(#attrs)*
            ///
            /// # Errors
            /// [`CallError::Panicked`](::tomada::CallError::Panicked) if the plugin's method panicked.
            #[inline]
            #[allow(clippy::too_many_arguments)]
            pub fn #ident(&self, #(#arg_idents: #arg_tys),*) -> ::core::result::Result<#ret, ::tomada::CallError> {
                #provided_check
                let mut __out = ::core::mem::MaybeUninit::<<#ret as ::tomada::Abi>::Ffi>::uninit();
                let mut __panic = ::core::mem::MaybeUninit::<::tomada::ffi::RVec>::uninit();
                // SAFETY: `vtable` and `this` come from a loaded plugin whose contract
                // matched this client's (checked by the loader) up to `provided`
                // methods, which covers this one; the library outlives `self`; the
                // arguments are converted by their `Abi` impls and `__out`/`__panic`
                // are writable.
                let __status = unsafe {
                    ((*self.vtable).#ident)(
                        self.this,
                        #(<#arg_tys as ::tomada::Abi>::into_ffi(#arg_idents),)*
                        __out.as_mut_ptr(),
                        __panic.as_mut_ptr(),
                    )
                };
                // SAFETY: the shim wrote `__out` or `__panic` as `__status` says.
                unsafe { ::tomada::call::__finish::<#ret>(__status, __out, __panic) }
            }
        });
        // The parameters of every shim of this method, local or remote: the vtable's.
        let shim_params = quote! {
            this: *const ::core::ffi::c_void,
            #(#arg_idents: #ffi_args,)*
            out: *mut #ret_ffi,
            panic: *mut ::tomada::ffi::RVec,
        };
        shims.push(quote! {
            #[doc(hidden)]
            #[allow(clippy::too_many_arguments)]
            unsafe extern "C" fn #shim<T: #trait_ident>(#shim_params) -> ::tomada::ffi::Status {
                // SAFETY: the host calls with writable `out`/`panic` and the instance
                // made by this plugin's `create` (a `T`), with arguments made by the
                // same `Abi` impls (the fingerprints matched) that live for the call.
                unsafe {
                    ::tomada::call::__shim::<#ret>(out, panic, || {
                        let this = &*this.cast::<T>();
                        this.#ident(#(<#arg_tys as ::tomada::Abi>::from_ffi(#arg_idents)),*)
                    })
                }
            }
        });
        // Isolation: the host half (remote shim) and plugin half (dispatch arm) of a
        // byte-level call; see `tomada::remote`.
        let remote_shim = format_ident!("__tomada_remote_{}", ident);
        let method_no = index as u32;
        remote_inits.push(quote!(#ident: Self::#remote_shim,));
        remote_shims.push(quote! {
            #[doc(hidden)]
            #[allow(clippy::too_many_arguments)]
            unsafe extern "C" fn #remote_shim(#shim_params) -> ::tomada::ffi::Status {
                // SAFETY: the client calls with its `this`, a live `RemoteObject`, with
                // arguments it just converted by the same `Abi` impls, and writable
                // `out`/`panic`.
                unsafe {
                    let args = (#(<#arg_tys as ::tomada::Abi>::from_ffi(#arg_idents),)*);
                    ::tomada::remote::__call::<_, #ret>(this, #method_no, &args, out, panic)
                }
            }
        });
        dispatch_arms.push(quote! {
            #method_no => ::tomada::remote::__serve(out, panic, || {
                let (#(#arg_idents,)*): (#(#arg_tys,)*) = ::tomada::__private::postcard::from_bytes(args)?;
                ::core::result::Result::Ok(this.#ident(#(#arg_idents),*))
            }),
        });
        let arg_shapes: Vec<_> =
            arg_tys_static.iter().map(|t| quote_spanned!(t.span()=> <#t as ::tomada::Abi>::SHAPE)).collect();
        let ret_shape = quote_spanned!(ret.span()=> <#ret_static as ::tomada::Abi>::SHAPE);
        let arg_texts: Vec<_> = m.args.iter().map(|(_, t)| type_text(t)).collect();
        let ret_text = type_text(ret);
        let arg_descs: Vec<_> = arg_tys_static
            .iter()
            .zip(&arg_texts)
            .map(|(t, text)| {
                quote_spanned!(t.span()=> ::tomada::interface::TypeDesc {
                    text: #text,
                    shape: <#t as ::tomada::Abi>::SHAPE,
                    fields: <#t as ::tomada::Abi>::FIELDS,
                })
            })
            .collect();
        method_descs.push(quote! {
            ::tomada::interface::MethodDesc {
                name: #name_str,
                since: #since,
                args: &[#(#arg_descs),*],
                ret: ::tomada::interface::TypeDesc {
                    text: #ret_text,
                    shape: <#ret_static as ::tomada::Abi>::SHAPE,
                    fields: <#ret_static as ::tomada::Abi>::FIELDS,
                },
            }
        });
        fingerprint.push(quote! {
            h = ::tomada::fingerprint::str(h, #name_str);
            h = ::tomada::fingerprint::u64(h, #since as u64);
            h = ::tomada::fingerprint::u64(h, #arg_count);
            #(h = ::tomada::fingerprint::u64(h, #arg_shapes);)*
            h = ::tomada::fingerprint::u64(h, #ret_shape);
        });
    }

    let trait_str = trait_ident.to_string();
    Ok(quote! {
        #item

        #[doc = ::core::concat!("The `#[repr(C)]` vtable of [`", #trait_str, "`], one `extern \"C\"` shim per method, in order. Generated by `#[tomada::contract]`.")]
        #[repr(C)]
        #vis struct #vtable {
            #(#vtable_fields)*
        }

        #[doc = ::core::concat!("A loaded plugin implementing [`", #trait_str, "`], as the host calls it: the same methods, returning `Result<_, tomada::CallError>`. Reached through `tomada_host::Plugin<dyn ", #trait_str, ">`; generated by `#[tomada::contract]`.")]
        #vis struct #client {
            // A raw pointer, not a reference: a plugin of an older minor version has
            // a shorter vtable, and only its first `provided` entries may be read.
            vtable: *const #vtable,
            this: *const ::core::ffi::c_void,
            provided: usize,
            plugin_minor: u32,
        }

        // SAFETY: the plugin type behind `this` is `Send + Sync` (the contract trait
        // requires it) and the vtable is immutable.
        unsafe impl ::core::marker::Send for #client {}
        // SAFETY: as above.
        unsafe impl ::core::marker::Sync for #client {}

        impl ::core::fmt::Debug for #client {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(::core::stringify!(#client)).field("this", &self.this).finish_non_exhaustive()
            }
        }

        impl #client {
            #(#client_methods)*
        }

        impl dyn #trait_ident {
            #[doc(hidden)]
            pub const fn __tomada_vtable<T: #trait_ident>() -> #vtable {
                #vtable { #(#vtable_inits)* }
            }
            #(#shims)*

            #[doc(hidden)]
            pub const fn __tomada_remote_vtable() -> #vtable {
                #vtable { #(#remote_inits)* }
            }
            #(#remote_shims)*

            /// Plugin side of a byte-level call (isolated mode).
            #[doc(hidden)]
            pub unsafe extern "C" fn __tomada_dispatch<T: #trait_ident>(
                this: *const ::core::ffi::c_void,
                method: u32,
                args: ::tomada::ffi::RSlice,
                out: *mut ::tomada::ffi::RVec,
                panic: *mut ::tomada::ffi::RVec,
            ) -> ::tomada::ffi::Status {
                // SAFETY: the runner calls with the instance this plugin's `create`
                // made (a `T`), encoded arguments that live for the call, and writable
                // `out`/`panic`.
                unsafe {
                    let this = &*this.cast::<T>();
                    let args = args.as_bytes();
                    match method {
                        #(#dispatch_arms)*
                        other => ::tomada::remote::__unknown_method(other, panic),
                    }
                }
            }
        }

        // SAFETY: `VTable`, `FINGERPRINT` and `__client` are generated together from
        // the trait above.
        unsafe impl ::tomada::Contract for dyn #trait_ident {
            const NAME: &'static str = #name;
            const ABI: u32 = #abi;
            const FINGERPRINT: u64 = {
                let mut h = ::tomada::fingerprint::START;
                h = ::tomada::fingerprint::u64(h, #method_count);
                #(#fingerprint)*
                h
            };
            const MINOR: u32 = #minor;
            const DESCRIPTION: ::tomada::interface::ContractDesc = ::tomada::interface::ContractDesc {
                name: <Self as ::tomada::Contract>::NAME,
                abi: <Self as ::tomada::Contract>::ABI,
                minor: #minor,
                fingerprint: <Self as ::tomada::Contract>::FINGERPRINT,
                methods: &[#(#method_descs),*],
            };
            type VTable = #vtable;
            type Client = #client;
            const REMOTE_VTABLE: &'static #vtable = &<dyn #trait_ident>::__tomada_remote_vtable();

            unsafe fn __client(
                vtable: *const ::core::ffi::c_void,
                this: *const ::core::ffi::c_void,
                provided: usize,
                plugin_minor: u32,
            ) -> #client {
                #client { vtable: vtable.cast::<#vtable>(), this, provided, plugin_minor }
            }
        }
    })
}

fn derive_abi_impl(item: DeriveInput) -> syn::Result<TokenStream2> {
    if !item.generics.params.is_empty() {
        return Err(Error::new(
            item.generics.span(),
            "`#[derive(tomada::Abi)]` structs cannot be generic or borrow: they must own their data",
        ));
    }
    let Data::Struct(data) = &item.data else {
        return Err(Error::new(
            item.ident.span(),
            "`#[derive(tomada::Abi)]` supports structs only; for a choice use `Option<T>` or `Result<T, E>`",
        ));
    };
    let ident = &item.ident;
    let vis = &item.vis;
    let ffi = format_ident!("__TomadaFfi{}", ident);
    let name_str = ident.to_string();

    let fields: Vec<(TokenStream2, String, &Type)> = match &data.fields {
        Fields::Named(named) => named
            .named
            .iter()
            .map(|f| {
                let i = f.ident.as_ref().expect("named field");
                (quote!(#i), i.to_string(), &f.ty)
            })
            .collect(),
        Fields::Unnamed(unnamed) => unnamed
            .unnamed
            .iter()
            .enumerate()
            .map(|(n, f)| {
                let i = syn::Index::from(n);
                (quote!(#i), n.to_string(), &f.ty)
            })
            .collect(),
        Fields::Unit => Vec::new(),
    };
    for (_, name, ty) in &fields {
        if contains_reference(ty) {
            return Err(Error::new(
                ty.span(),
                format!(
                    "field `{name}` borrows: `#[derive(tomada::Abi)]` structs must own their data (use `String`, `Vec<u8>`)"
                ),
            ));
        }
        check_boundary_type(ty, &format!("field `{name}` of `{ident}`"))?;
    }
    let members: Vec<_> = fields.iter().map(|(m, _, _)| m).collect();
    let names: Vec<_> = fields.iter().map(|(_, n, _)| n).collect();
    let tys: Vec<_> = fields.iter().map(|(_, _, t)| *t).collect();
    let ffi_tys: Vec<_> = tys.iter().map(|t| quote_spanned!(t.span()=> <#t as ::tomada::Abi>::Ffi)).collect();
    let count = fields.len() as u64;
    let field_descs: Vec<_> = fields
        .iter()
        .map(|(_, name, ty)| {
            let text = type_text(ty);
            quote_spanned!(ty.span()=> ::tomada::interface::FieldDesc {
                name: #name,
                ty: ::tomada::interface::TypeDesc {
                    text: #text,
                    shape: <#ty as ::tomada::Abi>::SHAPE,
                    fields: <#ty as ::tomada::Abi>::FIELDS,
                },
            })
        })
        .collect();

    // A struct without fields crosses as one byte: C has no empty structs.
    let ffi_def = match &data.fields {
        _ if fields.is_empty() => quote!(#vis struct #ffi { pub _empty: u8 }),
        Fields::Unnamed(_) => quote!(#vis struct #ffi(#(pub #ffi_tys,)*);),
        _ => quote!(#vis struct #ffi { #(pub #members: #ffi_tys,)* }),
    };
    let build_ffi = match &data.fields {
        _ if fields.is_empty() => quote!(#ffi { _empty: 0 }),
        _ => quote!(#ffi { #(#members: ::tomada::Abi::into_ffi(self.#members),)* }),
    };
    let build_self = match &data.fields {
        Fields::Unit => quote!(Self),
        Fields::Named(_) if fields.is_empty() => quote!(Self {}),
        Fields::Unnamed(_) if fields.is_empty() => quote!(Self()),
        _ => {
            quote!(Self { #(#members: unsafe { <#tys as ::tomada::Abi>::from_ffi(ffi.#members) },)* })
        }
    };

    // Serde, for isolated plugins' byte-level calls: the fields as a tuple.
    let locals: Vec<_> = (0..fields.len()).map(|i| format_ident!("__field{}", i)).collect();
    let indices: Vec<_> = (0..fields.len()).collect();
    let build_from_locals = match &data.fields {
        Fields::Unit => quote!(#ident),
        Fields::Unnamed(_) => quote!(#ident(#(#locals),*)),
        Fields::Named(_) => quote!(#ident { #(#members: #locals),* }),
    };
    let count_usize = fields.len();
    let serde_impls = quote! {
        impl ::tomada::__private::serde::Serialize for #ident {
            fn serialize<S: ::tomada::__private::serde::Serializer>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error> {
                use ::tomada::__private::serde::ser::SerializeTuple;
                let mut tuple = serializer.serialize_tuple(#count_usize)?;
                #(tuple.serialize_element(&self.#members)?;)*
                tuple.end()
            }
        }

        impl<'de> ::tomada::__private::serde::Deserialize<'de> for #ident {
            fn deserialize<D: ::tomada::__private::serde::Deserializer<'de>>(deserializer: D) -> ::core::result::Result<Self, D::Error> {
                struct Visitor;
                impl<'de> ::tomada::__private::serde::de::Visitor<'de> for Visitor {
                    type Value = #ident;
                    fn expecting(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        f.write_str(::core::concat!("struct ", #name_str))
                    }
                    #[allow(unused_mut, unused_variables)]
                    fn visit_seq<A: ::tomada::__private::serde::de::SeqAccess<'de>>(self, mut seq: A) -> ::core::result::Result<#ident, A::Error> {
                        #(
                            let #locals = seq.next_element()?.ok_or_else(|| {
                                <A::Error as ::tomada::__private::serde::de::Error>::invalid_length(#indices, &self)
                            })?;
                        )*
                        ::core::result::Result::Ok(#build_from_locals)
                    }
                }
                deserializer.deserialize_tuple(#count_usize, Visitor)
            }
        }
    };

    Ok(quote! {
        #serde_impls

        #[doc(hidden)]
        #[allow(missing_docs, non_camel_case_types, clippy::all)]
        #[repr(C)]
        #ffi_def

        // SAFETY: `Ffi` is `#[repr(C)]` of the fields' `Ffi` types, converted field by
        // field; the shape covers the struct's name and every field's name and shape.
        unsafe impl ::tomada::Abi for #ident {
            type Ffi = #ffi;
            const SHAPE: u64 = {
                let mut h = ::tomada::fingerprint::str(::tomada::fingerprint::START, "struct");
                h = ::tomada::fingerprint::str(h, #name_str);
                h = ::tomada::fingerprint::u64(h, #count);
                #(
                    h = ::tomada::fingerprint::str(h, #names);
                    h = ::tomada::fingerprint::u64(h, <#tys as ::tomada::Abi>::SHAPE);
                )*
                h
            };
            const FIELDS: &'static [::tomada::interface::FieldDesc] = &[#(#field_descs),*];
            #[inline]
            fn into_ffi(self) -> #ffi {
                #build_ffi
            }
            #[inline]
            #[allow(unused_variables, clippy::undocumented_unsafe_blocks)]
            unsafe fn from_ffi(ffi: #ffi) -> Self {
                // SAFETY (each field): the caller guarantees `ffi` was made by `into_ffi`
                // of a struct with the same shape, so each field by its type's `into_ffi`.
                #build_self
            }
        }
    })
}
