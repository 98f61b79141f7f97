//! Which types may cross the boundary, in one place: the list that diagnostics and
//! documentation quote ([`SUPPORTED`]), and the types refused with a message better
//! than "trait not implemented" ([`check`]). Anything not refused here is left to the
//! `Abi`/`Arg` bound, which names the type in one error (see `contract::bounds`).

use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{Error, GenericArgument, PathArguments, Type, TypeParamBound};

/// The boundary types, as the docs and diagnostics name them.
pub(crate) const SUPPORTED: &str = "integers, f32, f64, bool, char, (), String, Vec<T>, VecDeque<T>, HashMap<K, V>, \
     BTreeMap<K, V>, HashSet<T>, BTreeSet<T>, Option<T>, Result<T, E>, Box<T>, tuples (up to 12), arrays [T; N], \
     and structs or enums with #[derive(tomada::Abi)]";

/// Where a type stands in a contract.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// A whole method argument: may borrow (`&str`, `&[T]`).
    Argument,
    /// A method's result.
    Result,
    /// A field of a derived struct or enum.
    Field,
    /// Inside another type.
    Nested,
}

/// Refuses, with a message naming the type and what to use instead, the types that
/// can never cross. `what` says where the type is, e.g. "argument 1 of `put`".
pub(crate) fn check(ty: &Type, place: Place, what: &str) -> syn::Result<()> {
    let text = type_text(ty);
    let err = |msg: String| Err(Error::new(ty.span(), msg));
    match ty {
        Type::Paren(p) => check(&p.elem, place, what),
        Type::Group(g) => check(&g.elem, place, what),
        Type::Reference(r) => {
            if r.mutability.is_some() {
                return err(format!(
                    "`{text}` cannot cross a tomada plugin boundary ({what}): the plugin cannot write into the host's memory; pass the value and return the new one"
                ));
            }
            match place {
                Place::Argument => {}
                Place::Result => {
                    return err(format!(
                        "`{text}` cannot cross a tomada plugin boundary ({what}): a returned borrow would point into the plugin; return an owned type (`String`, `Vec<T>`)"
                    ));
                }
                Place::Field | Place::Nested => {
                    return err(format!(
                        "`{text}` cannot cross a tomada plugin boundary ({what}): only a whole argument may borrow (`&str`, `&[T]`); use an owned type (`String`, `Vec<T>`)"
                    ));
                }
            }
            match &*r.elem {
                Type::Path(p) if p.path.is_ident("str") => Ok(()),
                Type::Slice(s) => check(&s.elem, Place::Nested, what),
                Type::Path(p) if last_ident(p).is_some_and(|i| i == "String") => {
                    err(format!("use `&str` instead of `{text}` ({what})"))
                }
                Type::Path(p) if last_ident(p).is_some_and(|i| i == "Vec") => {
                    err(format!("use `&[T]` instead of `{text}` ({what})"))
                }
                // `&dyn Contract`: an object borrowed for the call (a closure is refused).
                Type::TraitObject(t) if !is_closure(&t.bounds) => Ok(()),
                Type::TraitObject(_) | Type::ImplTrait(_) => check(&r.elem, Place::Nested, what),
                _ => err(format!(
                    "`{text}` cannot cross a tomada plugin boundary ({what}): only `&str` and `&[T]` may be borrowed; take the value itself"
                )),
            }
        }
        Type::TraitObject(t) => dyn_error(ty, &t.bounds, what),
        Type::ImplTrait(t) if place == Place::Result && is_future(&t.bounds) => err(format!(
            "`{text}` cannot cross a tomada plugin boundary ({what}): declare the method `async fn` instead (tomada makes its future cross the boundary)"
        )),
        Type::ImplTrait(t) => dyn_error(ty, &t.bounds, what),
        Type::Ptr(_) => err(format!(
            "`{text}` cannot cross a tomada plugin boundary ({what}): raw pointers mean nothing in the other side's memory; pass the data (`Vec<T>`, `&[T]`, a value)"
        )),
        Type::BareFn(_) => err(format!(
            "`{text}` cannot cross a tomada plugin boundary ({what}): a function pointer of one side cannot be called safely by the other; declare a one-method contract trait instead"
        )),
        Type::Slice(_) => err(format!(
            "`{text}` cannot cross a tomada plugin boundary ({what}): it has no size; use `Vec<T>` (or `&[T]` as an argument)"
        )),
        Type::Tuple(t) => {
            if t.elems.len() > 12 {
                return err(format!(
                    "`{text}` cannot cross a tomada plugin boundary ({what}): tuples of up to 12 elements can; use a struct with `#[derive(tomada::Abi)]`"
                ));
            }
            t.elems.iter().try_for_each(|e| check(e, Place::Nested, what))
        }
        Type::Array(a) => check(&a.elem, Place::Nested, what),
        Type::Path(p) => {
            if p.qself.is_none() && p.path.is_ident("str") {
                return err(format!(
                    "`str` cannot cross a tomada plugin boundary ({what}): use `String` (or `&str` as an argument)"
                ));
            }
            if p.path.is_ident("Self") {
                return err(format!(
                    "`Self` cannot cross a tomada plugin boundary ({what}): the host does not know the plugin's type; use a concrete type"
                ));
            }
            if let Some(ident) = last_ident(p) {
                let name = ident.to_string();
                // `Box<dyn Contract>` / `Arc<dyn Contract>`: a trait object of a contract
                // (that it is one, the `Abi` bound says); closures get their own message.
                if matches!(name.as_str(), "Box" | "Arc")
                    && let Some(Type::TraitObject(t)) = single_type_argument(p)
                {
                    return if is_closure(&t.bounds) { dyn_error(ty, &t.bounds, what) } else { Ok(()) };
                }
                let why = match name.as_str() {
                    "Rc" | "Arc" | "Weak" => {
                        Some("the two sides do not share memory management; use `T` or `Box<T>`".to_owned())
                    }
                    "Cell" | "RefCell" | "UnsafeCell" | "OnceCell" | "Mutex" | "RwLock" | "OnceLock" => {
                        Some("interior mutability cannot be shared across the boundary; pass the value".to_owned())
                    }
                    n if n.starts_with("Atomic") => {
                        Some("atomics cannot be shared across the boundary; pass the value".to_owned())
                    }
                    "Cow" => {
                        Some("use the owned type (`String`, `Vec<T>`) or, as an argument, `&str` / `&[T]`".to_owned())
                    }
                    "PhantomData" => Some("it carries no data; leave it out of the contract".to_owned()),
                    "Pin" | "Future" | "BoxFuture" if place == Place::Result => Some(
                        "declare the method `async fn` instead (tomada makes its future cross the boundary); implement it with `async fn` under `#[tomada::implement]`".to_owned(),
                    ),
                    "Pin" | "Future" | "BoxFuture" => Some("use the value itself".to_owned()),
                    "OsString" | "PathBuf" | "CString" => {
                        Some("its bytes are platform-specific; use `String` or `Vec<u8>`".to_owned())
                    }
                    "OsStr" | "Path" | "CStr" => {
                        Some("its bytes are platform-specific; use `&str` or `&[u8]`".to_owned())
                    }
                    _ => None,
                };
                if let Some(why) = why {
                    return err(format!("`{text}` cannot cross a tomada plugin boundary ({what}): {why}"));
                }
            }
            // Type arguments are checked the same way (`Vec<Rc<T>>`).
            for seg in &p.path.segments {
                if let PathArguments::AngleBracketed(args) = &seg.arguments {
                    for arg in &args.args {
                        if let GenericArgument::Type(t) = arg {
                            check(t, Place::Nested, what)?;
                        }
                    }
                }
            }
            Ok(())
        }
        Type::Never(_) => err(format!("`!` cannot cross a tomada plugin boundary ({what}): return `()` instead")),
        _ => Ok(()),
    }
}

/// The one type argument of `p`'s last segment, if it has exactly one.
fn single_type_argument(p: &syn::TypePath) -> Option<&Type> {
    let PathArguments::AngleBracketed(args) = &p.path.segments.last()?.arguments else { return None };
    let mut types = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    let first = types.next()?;
    types.next().is_none().then_some(first)
}

/// Whether trait-object bounds name a closure trait (`Fn`, `FnMut`, `FnOnce`).
fn is_closure(bounds: &syn::punctuated::Punctuated<TypeParamBound, syn::Token![+]>) -> bool {
    bounds.iter().any(|b| match b {
        TypeParamBound::Trait(t) => {
            t.path.segments.last().is_some_and(|s| matches!(s.ident.to_string().as_str(), "Fn" | "FnMut" | "FnOnce"))
        }
        _ => false,
    })
}

/// Whether bounds name `Future`.
fn is_future(bounds: &syn::punctuated::Punctuated<TypeParamBound, syn::Token![+]>) -> bool {
    bounds
        .iter()
        .any(|b| matches!(b, TypeParamBound::Trait(t) if t.path.segments.last().is_some_and(|s| s.ident == "Future")))
}

fn last_ident(p: &syn::TypePath) -> Option<&syn::Ident> {
    p.path.segments.last().map(|s| &s.ident)
}

fn dyn_error(
    ty: &Type,
    bounds: &syn::punctuated::Punctuated<TypeParamBound, syn::Token![+]>,
    what: &str,
) -> syn::Result<()> {
    let text = type_text(ty);
    let msg = if is_closure(bounds) {
        format!(
            "closures cannot cross a tomada plugin boundary ({what}): `{text}`; declare a one-method contract trait (`#[tomada::contract] trait OnEvent {{ fn call(&self, ..); }}`) for what the closure does"
        )
    } else {
        format!(
            "`{text}` cannot cross a tomada plugin boundary ({what}): a trait object crosses as `Box<dyn C>`, `Arc<dyn C>` or (as an argument) `&dyn C` of a `#[tomada::contract]` trait `C`; otherwise use a boundary type: {SUPPORTED}"
        )
    };
    Err(Error::new(ty.span(), msg))
}

/// A type as the author wrote it, spaced as rustfmt would: `&dyn Fn(&str, &[u8])`,
/// `HashMap<String, Vec<u8>>`.
pub(crate) fn type_text(ty: &impl ToTokens) -> String {
    let raw = ty.to_token_stream().to_string();
    let mut out = String::with_capacity(raw.len());
    let chars: Vec<char> = raw.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let prev = out.chars().last().unwrap_or(' ');
            let next = chars.get(i + 1).copied().unwrap_or(' ');
            let glue_after = matches!(prev, '<' | '(' | '[' | '&' | ':' | '\'' | '!' | '*');
            let glue_before = matches!(next, '>' | ')' | ']' | ',' | ';' | ':' | '(' | '<');
            // `dyn Fn`, `impl X`, `mut T`, `fn (` stay spaced; `-> R` too.
            let keep = prev == '>' && next == '-' || prev == '-' || next == '=' || prev == '=';
            if (glue_after || glue_before) && !keep {
                continue;
            }
        }
        out.push(c);
        if c == ',' || c == ';' {
            out.push(' ');
        }
    }
    // `&'a str` keeps its space after the lifetime; `-> R` spaced on both sides.
    out = out
        .replace(",  ", ", ")
        .replace(";  ", "; ")
        .replace(")->", ") ->")
        .replace("->", "-> ")
        .replace("->  ", "-> ");
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        type_text(&syn::parse_str::<Type>(s).unwrap())
    }

    #[test]
    fn types_are_spaced_like_rustfmt() {
        assert_eq!(text("& dyn Fn(& str,&[u8])"), "&dyn Fn(&str, &[u8])");
        assert_eq!(text("HashMap<String,Vec<u8>>"), "HashMap<String, Vec<u8>>");
        assert_eq!(text("Option<Box<Entry>>"), "Option<Box<Entry>>");
        assert_eq!(text("[u8; 4]"), "[u8; 4]");
        assert_eq!(text("std::rc::Rc<u8>"), "std::rc::Rc<u8>");
        assert_eq!(text("(String, Vec<u8>)"), "(String, Vec<u8>)");
        assert_eq!(text("Box<dyn Fn(u8) -> u8>"), "Box<dyn Fn(u8) -> u8>");
    }
}
