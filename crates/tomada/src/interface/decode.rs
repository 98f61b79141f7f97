//! The decoder of manifests' contract descriptions: bytes that may be hostile.

use super::desc::Style;
use super::encode::{MAX_NAMED, tag};
use super::model::*;

/// Types nest (`Option<Vec<Result<Entry, Failure>>>`), but not this deep; the limit
/// keeps a hostile manifest from recursing without end.
const MAX_DEPTH: usize = 64;

/// A cursor over untrusted bytes.
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
}

/// Why bytes could not be decoded.
pub(crate) type Malformed = &'static str;

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.bytes.len() < n {
            return Err("it ends early");
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, Malformed> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, Malformed> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    pub(crate) fn string(&mut self) -> Result<String, Malformed> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a string is not UTF-8")
    }
    /// A count of items that take at least `min` bytes each: never more than the
    /// remaining bytes allow, so a lying count cannot make us allocate.
    fn count(&mut self, min: usize) -> Result<usize, Malformed> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min) > self.bytes.len() {
            return Err("a count is larger than the bytes that follow");
        }
        Ok(n)
    }
    fn style(&mut self) -> Result<Style, Malformed> {
        match self.u8()? {
            0 => Ok(Style::Unit),
            1 => Ok(Style::Tuple),
            2 => Ok(Style::Named),
            _ => Err("an unknown field style"),
        }
    }
    fn fields(&mut self, types: &mut Vec<TypeDef>, depth: usize) -> Result<Vec<Field>, Malformed> {
        let n = self.count(4 + 4 + 2)?;
        let mut fields = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.string()?;
            let since = self.u32()?;
            fields.push(Field { name, since, ty: self.ty(types, depth + 1)? });
        }
        Ok(fields)
    }
    fn ty(&mut self, types: &mut Vec<TypeDef>, depth: usize) -> Result<Type, Malformed> {
        if depth > MAX_DEPTH {
            return Err("types nest too deeply");
        }
        match self.u8()? {
            tag::LEAF => Ok(Type::Leaf(self.string()?)),
            tag::GENERIC => {
                let name = self.string()?;
                let n = self.count(2)?;
                let args = (0..n).map(|_| self.ty(types, depth + 1)).collect::<Result<_, _>>()?;
                Ok(Type::Generic { name, args })
            }
            tag::TUPLE => {
                let n = self.count(2)?;
                Ok(Type::Tuple((0..n).map(|_| self.ty(types, depth + 1)).collect::<Result<_, _>>()?))
            }
            tag::ARRAY => {
                let len = self.u64()?;
                Ok(Type::Array { elem: Box::new(self.ty(types, depth + 1)?), len })
            }
            t @ (tag::STRUCT | tag::ENUM | tag::OBJECT) => {
                if types.len() >= MAX_NAMED {
                    return Err("too many structs and enums");
                }
                let name = self.string()?;
                let index = types.len();
                // Registered before its body is read: the body may refer to it.
                types.push(TypeDef { name: name.clone(), body: Body::Struct { style: Style::Unit, fields: vec![] } });
                let body = if t == tag::OBJECT {
                    let abi = self.u32()?;
                    Body::Object { abi, methods: self.methods(types)? }
                } else if t == tag::STRUCT {
                    let style = self.style()?;
                    Body::Struct { style, fields: self.fields(types, depth)? }
                } else {
                    let n = self.count(4 + 1 + 4 + 1 + 4)?;
                    let mut variants = Vec::with_capacity(n);
                    for _ in 0..n {
                        let name = self.string()?;
                        let style = self.style()?;
                        let since = self.u32()?;
                        let other = match self.u8()? {
                            0 => false,
                            1 => true,
                            _ => return Err("an unknown variant flag"),
                        };
                        variants.push(Variant { name, style, since, other, fields: self.fields(types, depth)? });
                    }
                    Body::Enum { variants }
                };
                types[index].body = body;
                Ok(Type::Named { name, index })
            }
            tag::REF => {
                let index = self.u32()? as usize;
                let def = types.get(index).ok_or("a type reference points nowhere")?;
                Ok(Type::Named { name: def.name.clone(), index })
            }
            _ => Err("an unknown type tag"),
        }
    }
    pub(crate) fn interface(&mut self) -> Result<Interface, Malformed> {
        let name = self.string()?;
        let abi = self.u32()?;
        let minor = self.u32()?;
        let fingerprint = self.u64()?;
        let mut types = Vec::new();
        let methods = self.methods(&mut types)?;
        Ok(Interface { name, abi, minor, fingerprint, methods, types })
    }
    fn methods(&mut self, types: &mut Vec<TypeDef>) -> Result<Vec<Method>, Malformed> {
        let n = self.count(4 + 4 + 1 + 4 + 2)?;
        let mut methods = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.string()?;
            let since = self.u32()?;
            let fallback = match self.u8()? {
                0 => false,
                1 => true,
                _ => return Err("an unknown method flag"),
            };
            let argc = self.count(2)?;
            let mut args = Vec::with_capacity(argc);
            for _ in 0..argc {
                args.push(self.ty(types, 0)?);
            }
            let ret = self.ty(types, 0)?;
            methods.push(Method { name, since, fallback, args, ret });
        }
        Ok(methods)
    }
}
