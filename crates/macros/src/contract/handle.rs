//! The host's form of a result: where the contract returns a trait object the other
//! side made (`Box<dyn C>`, `Arc<dyn C>`, also inside `Option`, `Result`, `Vec`,
//! `VecDeque`, a map's values, tuples and arrays), the client's method returns a
//! handle (`tomada::Handle<dyn C>`, the contract's client) whose methods return
//! `Result<_, CallError>`. The handle crosses exactly as the trait object does (its
//! `Abi` impl shares the object's `#[repr(C)]` form and bytes), so the client decodes
//! the plugin's answer straight into it; the contract's description, vtable and
//! wire format are those of the trait as written.
//!
//! Found by the written shape of the type: a trait object behind a type alias, or in
//! a field of a struct, stays a trait object (`tomada::handle(&*object)` reaches its
//! handle).

use quote::quote;
use syn::{GenericArgument, PathArguments, Type};

/// `ty` with each object the other side made replaced by its handle; `None` if there
/// is none (the host's form is the type as written).
pub(crate) fn host_form(ty: &Type) -> Option<Type> {
    match ty {
        Type::Paren(p) => host_form(&p.elem),
        Type::Group(g) => host_form(&g.elem),
        Type::Tuple(t) => {
            let elems: Vec<Option<Type>> = t.elems.iter().map(host_form).collect();
            if elems.iter().all(Option::is_none) {
                return None;
            }
            let elems = elems.into_iter().zip(&t.elems).map(|(mapped, original)| mapped.unwrap_or(original.clone()));
            Some(syn::parse_quote!((#(#elems,)*)))
        }
        Type::Array(a) => {
            let elem = host_form(&a.elem)?;
            let len = &a.len;
            Some(syn::parse_quote!([#elem; #len]))
        }
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last()?;
            let PathArguments::AngleBracketed(args) = &last.arguments else { return None };
            let types: Vec<&Type> = args
                .args
                .iter()
                .filter_map(|a| match a {
                    GenericArgument::Type(t) => Some(t),
                    _ => None,
                })
                .collect();
            // Which type arguments may hold an object that becomes a handle.
            let mapped: &[usize] = match last.ident.to_string().as_str() {
                "Box" | "Arc" => {
                    return match types.as_slice() {
                        [Type::TraitObject(object)] => Some(syn::parse_quote!(::tomada::Handle<#object>)),
                        _ => None,
                    };
                }
                "Option" | "Vec" | "VecDeque" if types.len() == 1 => &[0],
                "Result" if types.len() == 2 => &[0, 1],
                // The values: a handle is never a key.
                "HashMap" | "BTreeMap" if types.len() == 2 => &[1],
                _ => return None,
            };
            let mut changed = false;
            let mut path = p.clone();
            let PathArguments::AngleBracketed(args) = &mut path.path.segments.last_mut()?.arguments else {
                return None;
            };
            let mut index = 0;
            for arg in &mut args.args {
                if let GenericArgument::Type(t) = arg {
                    if mapped.contains(&index)
                        && let Some(form) = host_form(t)
                    {
                        *t = form;
                        changed = true;
                    }
                    index += 1;
                }
            }
            changed.then(|| Type::Path(path))
        }
        _ => None,
    }
}

/// `ty` with `+ 'static` on each trait object that names no lifetime: the type as a
/// signature reads it, to name in a body (where an elided object lifetime would be
/// inferred, and an async block needs it for any lifetime).
pub(crate) fn with_static_objects(ty: &Type) -> Type {
    struct Static;
    impl syn::visit_mut::VisitMut for Static {
        fn visit_type_trait_object_mut(&mut self, t: &mut syn::TypeTraitObject) {
            syn::visit_mut::visit_type_trait_object_mut(self, t);
            if !t.bounds.iter().any(|b| matches!(b, syn::TypeParamBound::Lifetime(_))) {
                t.bounds.push(syn::parse_quote!('static));
            }
        }
    }
    let mut ty = ty.clone();
    syn::visit_mut::VisitMut::visit_type_mut(&mut Static, &mut ty);
    ty
}

/// Text for the docs of a method whose result became handles.
pub(crate) fn doc_line(declared: &Type) -> String {
    let text = crate::types::type_text(&quote!(#declared));
    format!(
        " The contract returns `{text}`: here each object the plugin made is a [`Handle`](::tomada::Handle), \
         whose methods return `Result<_, tomada::CallError>` (see [`tomada::Handle`](::tomada::Handle) for passing one back to a plugin)."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(ty: &str) -> Option<String> {
        let ty: Type = syn::parse_str(ty).unwrap();
        host_form(&ty).map(|t| quote!(#t).to_string().replace(' ', ""))
    }

    #[test]
    fn objects_become_handles_where_the_containers_are_generic() {
        assert_eq!(form("Box<dyn Cursor>").as_deref(), Some("::tomada::Handle<dynCursor>"));
        assert_eq!(form("std::sync::Arc<dyn a::Cursor>").as_deref(), Some("::tomada::Handle<dyna::Cursor>"));
        assert_eq!(form("Option<Box<dyn Cursor>>").as_deref(), Some("Option<::tomada::Handle<dynCursor>>"));
        assert_eq!(
            form("Result<Vec<Box<dyn Cursor>>, E>").as_deref(),
            Some("Result<Vec<::tomada::Handle<dynCursor>>,E>")
        );
        assert_eq!(
            form("HashMap<String, Box<dyn Cursor>>").as_deref(),
            Some("HashMap<String,::tomada::Handle<dynCursor>>")
        );
        assert_eq!(form("(u8, Box<dyn Cursor>)").as_deref(), Some("(u8,::tomada::Handle<dynCursor>,)"));
        assert_eq!(form("[Box<dyn Cursor>; 2]").as_deref(), Some("[::tomada::Handle<dynCursor>;2]"));
    }

    #[test]
    fn everything_else_stays_as_written() {
        for ty in ["u32", "String", "Box<Entry>", "Option<String>", "Page", "HashMap<Box<dyn K>, u8>", "Rc<dyn C>"] {
            assert_eq!(form(ty), None, "{ty}");
        }
    }
}
