//! A contract's readable description: its methods in order with their signatures,
//! the fields of its structs, and the minor version that added each method.
//!
//! `#[contract]` builds a [`ContractDesc`] at compile time; [`export!`](crate::export)
//! writes it into the plugin's manifest and [`expects!`](crate::expects) into a host
//! executable, both as pointer-free bytes. Read back they are an [`Interface`], and
//! [`Interface::fit`] says whether a plugin fits a host and, if not, what differs,
//! method by method.
//!
//! # Evolving a contract
//! The ABI number is the contract's major version: any change there means rebuild.
//! Methods appended at the end of the trait with `#[tomada(since = N)]` raise its minor
//! version to `N` without breaking anyone: a plugin built against an older minor loads
//! into a newer host (calling a method it lacks returns
//! [`CallError::NotProvided`](crate::CallError::NotProvided)), and a newer plugin loads
//! into an older host. Anything else — a method removed, renamed, reordered or
//! retyped, a struct field changed — is refused, with the difference spelled out.

use std::fmt;

/// A type at the boundary, as the contract author wrote it.
#[derive(Debug, Clone, Copy)]
pub struct TypeDesc {
    /// The type as written, e.g. `Option<String>`.
    pub text: &'static str,
    /// Its [`Abi::SHAPE`](crate::Abi::SHAPE).
    pub shape: u64,
    /// Its fields, for `#[derive(Abi)]` structs.
    pub fields: &'static [FieldDesc],
}

/// A field of a `#[derive(Abi)]` struct.
#[derive(Debug, Clone, Copy)]
pub struct FieldDesc {
    /// The field's name (`0`, `1`, ... for tuple structs).
    pub name: &'static str,
    /// The field's type.
    pub ty: TypeDesc,
}

/// A contract method.
#[derive(Debug, Clone, Copy)]
pub struct MethodDesc {
    /// The method's name.
    pub name: &'static str,
    /// The minor version that added it (0 for the original methods).
    pub since: u32,
    /// Its arguments after `&self`.
    pub args: &'static [TypeDesc],
    /// Its result.
    pub ret: TypeDesc,
}

/// A whole contract, as `#[contract]` describes it at compile time.
#[derive(Debug, Clone, Copy)]
pub struct ContractDesc {
    /// e.g. `pluginapi::Greeter`.
    pub name: &'static str,
    /// The major version.
    pub abi: u32,
    /// The minor version: the largest `since` of its methods.
    pub minor: u32,
    /// The layout fingerprint of all its methods.
    pub fingerprint: u64,
    /// Its methods, in vtable order.
    pub methods: &'static [MethodDesc],
}

/// A boundary type, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Type {
    /// The type as written.
    pub text: String,
    /// Its shape hash.
    pub shape: u64,
    /// Its fields, for structs.
    pub fields: Vec<Field>,
}

/// A struct field, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field's name.
    pub name: String,
    /// Its type.
    pub ty: Type,
}

/// A contract method, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// Its name.
    pub name: String,
    /// The minor version that added it.
    pub since: u32,
    /// Its arguments after `&self`.
    pub args: Vec<Type>,
    /// Its result.
    pub ret: Type,
}

/// A contract, read back from a plugin's manifest or a host's expectations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// e.g. `pluginapi::Greeter`.
    pub name: String,
    /// The major version.
    pub abi: u32,
    /// The minor version.
    pub minor: u32,
    /// The layout fingerprint.
    pub fingerprint: u64,
    /// The methods, in vtable order.
    pub methods: Vec<Method>,
}

impl From<&TypeDesc> for Type {
    fn from(t: &TypeDesc) -> Type {
        Type { text: t.text.into(), shape: t.shape, fields: t.fields.iter().map(Field::from).collect() }
    }
}

impl From<&FieldDesc> for Field {
    fn from(f: &FieldDesc) -> Field {
        Field { name: f.name.into(), ty: Type::from(&f.ty) }
    }
}

impl From<&MethodDesc> for Method {
    fn from(m: &MethodDesc) -> Method {
        Method {
            name: m.name.into(),
            since: m.since,
            args: m.args.iter().map(Type::from).collect(),
            ret: Type::from(&m.ret),
        }
    }
}

impl From<&ContractDesc> for Interface {
    fn from(c: &ContractDesc) -> Interface {
        Interface {
            name: c.name.into(),
            abi: c.abi,
            minor: c.minor,
            fingerprint: c.fingerprint,
            methods: c.methods.iter().map(Method::from).collect(),
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Display for Method {
    /// `fn name(&self, A, B) -> R`, with `[since 1.N]` for minor additions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fn {}(&self", self.name)?;
        for a in &self.args {
            write!(f, ", {a}")?;
        }
        write!(f, ")")?;
        if self.ret.text != "()" {
            write!(f, " -> {}", self.ret)?;
        }
        if self.since > 0 {
            write!(f, "  [since minor {}]", self.since)?;
        }
        Ok(())
    }
}

/// How a plugin fits a host, when it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    /// How many of the host's methods the plugin provides (the rest return
    /// [`CallError::NotProvided`](crate::CallError::NotProvided)).
    pub provided: usize,
}

impl Interface {
    /// The version as `ABI.minor`, e.g. `1.0`.
    pub fn version(&self) -> String {
        format!("{}.{}", self.abi, self.minor)
    }

    /// Whether a plugin implementing `plugin` can serve a host expecting `self`.
    ///
    /// Names and ABI numbers are compared by the caller (they have errors of their
    /// own); this compares the methods: the shorter list must be a prefix of the
    /// longer, identical in names and types, and every method past it must be a
    /// minor addition (`since > 0`).
    ///
    /// # Errors
    /// Every difference found, in words, method by method.
    ///
    /// # Examples
    /// ```
    /// use tomada::interface::Interface;
    /// # use tomada::Contract;
    /// #[tomada::contract(abi = 1, name = "demo::Api")]
    /// pub trait V10 { fn greet(&self, name: &str) -> String; }
    /// #[tomada::contract(abi = 1, name = "demo::Api")]
    /// pub trait V11 {
    ///     fn greet(&self, name: &str) -> String;
    ///     #[tomada(since = 1)]
    ///     fn farewell(&self, name: &str) -> String;
    /// }
    /// #[tomada::contract(abi = 1, name = "demo::Api")]
    /// pub trait Changed { fn greet(&self, name: String) -> String; }
    ///
    /// let v10 = Interface::from(&<dyn V10 as Contract>::DESCRIPTION);
    /// let v11 = Interface::from(&<dyn V11 as Contract>::DESCRIPTION);
    /// let changed = Interface::from(&<dyn Changed as Contract>::DESCRIPTION);
    /// assert_eq!(v11.fit(&v10).unwrap().provided, 1); // old plugin, new host: `farewell` missing
    /// assert_eq!(v10.fit(&v11).unwrap().provided, 1); // new plugin, old host: all it knows
    /// let why = v10.fit(&changed).unwrap_err();
    /// assert_eq!(why, ["method `greet` changed: argument 1 is `String` in the plugin, `&str` in the host"]);
    /// ```
    pub fn fit(&self, plugin: &Interface) -> Result<Fit, Vec<String>> {
        let host = self;
        let mut why = Vec::new();
        let common = host.methods.len().min(plugin.methods.len());
        for (i, (h, p)) in host.methods.iter().zip(&plugin.methods).enumerate() {
            if h.name != p.name {
                why.push(format!(
                    "method {} is `{}` in the plugin, `{}` in the host (a method was renamed, removed, inserted or moved)",
                    i + 1,
                    p.name,
                    h.name
                ));
                continue;
            }
            method_differences(h, p, &mut why);
        }
        for (side, extra) in [("plugin", &plugin.methods[common..]), ("host", &host.methods[common..])] {
            for m in extra.iter().filter(|m| m.since == 0) {
                why.push(format!(
                    "method `{}` is only in the {side}, and is not a minor addition (`#[tomada(since = N)]` at the end of the trait)",
                    m.name
                ));
            }
        }
        if why.is_empty() { Ok(Fit { provided: plugin.methods.len().min(host.methods.len()) }) } else { Err(why) }
    }
}

fn method_differences(h: &Method, p: &Method, why: &mut Vec<String>) {
    let name = &h.name;
    if h.since != p.since {
        why.push(format!("method `{name}` was added in minor {} per the plugin, {} per the host", p.since, h.since));
    }
    if h.args.len() != p.args.len() {
        why.push(format!(
            "method `{name}` changed: it takes {} argument(s) in the plugin, {} in the host",
            p.args.len(),
            h.args.len()
        ));
    } else {
        for (j, (ha, pa)) in h.args.iter().zip(&p.args).enumerate() {
            type_differences(&format!("method `{name}` changed: argument {}", j + 1), ha, pa, why);
        }
    }
    type_differences(&format!("method `{name}` changed: the result"), &h.ret, &p.ret, why);
}

fn type_differences(what: &str, h: &Type, p: &Type, why: &mut Vec<String>) {
    if h.shape == p.shape {
        return;
    }
    if h.text != p.text {
        why.push(format!("{what} is `{}` in the plugin, `{}` in the host", p.text, h.text));
        return;
    }
    // Same name, different layout: say which fields differ, if we know them.
    let before = why.len();
    let what = format!("{what} `{}`", h.text);
    for hf in &h.fields {
        match p.fields.iter().find(|pf| pf.name == hf.name) {
            None => why.push(format!("{what}: field `{}` is only in the host", hf.name)),
            Some(pf) => type_differences(&format!("{what}: field `{}`", hf.name), &hf.ty, &pf.ty, why),
        }
    }
    for pf in p.fields.iter().filter(|pf| !h.fields.iter().any(|hf| hf.name == pf.name)) {
        why.push(format!("{what}: field `{}` is only in the plugin", pf.name));
    }
    if why.len() == before {
        let order = |t: &Type| t.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ");
        if !h.fields.is_empty() && order(h) != order(p) {
            why.push(format!(
                "{what}: fields are in another order ({} in the plugin, {} in the host)",
                order(p),
                order(h)
            ));
        } else {
            why.push(format!("{what} has another layout in the plugin (a type inside it changed)"));
        }
    }
}

// ---------------------------------------------------------------------------------
// Encoding (const, at compile time) and decoding (bounded, never panics).

pub(crate) const fn str_len(s: &str) -> usize {
    4 + s.len()
}

pub(crate) const fn type_len(t: &TypeDesc) -> usize {
    let mut len = str_len(t.text) + 8 + 4;
    let mut i = 0;
    while i < t.fields.len() {
        len += str_len(t.fields[i].name) + type_len(&t.fields[i].ty);
        i += 1;
    }
    len
}

const fn method_len(m: &MethodDesc) -> usize {
    let mut len = str_len(m.name) + 4 + 4;
    let mut i = 0;
    while i < m.args.len() {
        len += type_len(&m.args[i]);
        i += 1;
    }
    len + type_len(&m.ret)
}

/// The number of bytes [`write_contract`] writes for `c`.
pub(crate) const fn contract_len(c: &ContractDesc) -> usize {
    let mut len = str_len(c.name) + 4 + 4 + 8 + 4;
    let mut i = 0;
    while i < c.methods.len() {
        len += method_len(&c.methods[i]);
        i += 1;
    }
    len
}

pub(crate) const fn put(out: &mut [u8], at: usize, bytes: &[u8]) -> usize {
    let mut i = 0;
    while i < bytes.len() {
        out[at + i] = bytes[i];
        i += 1;
    }
    at + bytes.len()
}

pub(crate) const fn put_u32(out: &mut [u8], at: usize, v: u32) -> usize {
    put(out, at, &v.to_le_bytes())
}

pub(crate) const fn put_str(out: &mut [u8], at: usize, s: &str) -> usize {
    assert!(s.len() <= u32::MAX as usize, "string too long for a manifest");
    let at = put_u32(out, at, s.len() as u32);
    put(out, at, s.as_bytes())
}

const fn write_type(out: &mut [u8], mut at: usize, t: &TypeDesc) -> usize {
    at = put_str(out, at, t.text);
    at = put(out, at, &t.shape.to_le_bytes());
    at = put_u32(out, at, t.fields.len() as u32);
    let mut i = 0;
    while i < t.fields.len() {
        at = put_str(out, at, t.fields[i].name);
        at = write_type(out, at, &t.fields[i].ty);
        i += 1;
    }
    at
}

/// Writes `c` at `at`; returns the end.
pub(crate) const fn write_contract(out: &mut [u8], mut at: usize, c: &ContractDesc) -> usize {
    at = put_str(out, at, c.name);
    at = put_u32(out, at, c.abi);
    at = put_u32(out, at, c.minor);
    at = put(out, at, &c.fingerprint.to_le_bytes());
    at = put_u32(out, at, c.methods.len() as u32);
    let mut i = 0;
    while i < c.methods.len() {
        let m = &c.methods[i];
        at = put_str(out, at, m.name);
        at = put_u32(out, at, m.since);
        at = put_u32(out, at, m.args.len() as u32);
        let mut j = 0;
        while j < m.args.len() {
            at = write_type(out, at, &m.args[j]);
            j += 1;
        }
        at = write_type(out, at, &m.ret);
        i += 1;
    }
    at
}

/// Types nest (`Option<Result<Person, Failure>>`), but not this deep; the limit keeps
/// a hostile manifest from recursing without end.
const MAX_DEPTH: usize = 32;

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
    fn ty(&mut self, depth: usize) -> Result<Type, Malformed> {
        if depth > MAX_DEPTH {
            return Err("types nest too deeply");
        }
        let text = self.string()?;
        let shape = self.u64()?;
        let n = self.count(4 + 16)?;
        let mut fields = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.string()?;
            fields.push(Field { name, ty: self.ty(depth + 1)? });
        }
        Ok(Type { text, shape, fields })
    }
    pub(crate) fn interface(&mut self) -> Result<Interface, Malformed> {
        let name = self.string()?;
        let abi = self.u32()?;
        let minor = self.u32()?;
        let fingerprint = self.u64()?;
        let n = self.count(4 + 8 + 16)?;
        let mut methods = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.string()?;
            let since = self.u32()?;
            let argc = self.count(16)?;
            let mut args = Vec::with_capacity(argc);
            for _ in 0..argc {
                args.push(self.ty(0)?);
            }
            let ret = self.ty(0)?;
            methods.push(Method { name, since, args, ret });
        }
        Ok(Interface { name, abi, minor, fingerprint, methods })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U8: TypeDesc = TypeDesc { text: "u8", shape: 1, fields: &[] };
    const STR: TypeDesc = TypeDesc { text: "&str", shape: 2, fields: &[] };
    const UNIT: TypeDesc = TypeDesc { text: "()", shape: 3, fields: &[] };
    const POINT: TypeDesc = TypeDesc {
        text: "Point",
        shape: 4,
        fields: &[FieldDesc { name: "x", ty: U8 }, FieldDesc { name: "y", ty: U8 }],
    };
    const DESC: ContractDesc = ContractDesc {
        name: "t::Api",
        abi: 1,
        minor: 1,
        fingerprint: 99,
        methods: &[
            MethodDesc { name: "a", since: 0, args: &[U8, STR], ret: POINT },
            MethodDesc { name: "b", since: 1, args: &[], ret: UNIT },
        ],
    };
    const LEN: usize = contract_len(&DESC);
    const BYTES: [u8; LEN] = {
        let mut out = [0u8; LEN];
        let end = write_contract(&mut out, 0, &DESC);
        assert!(end == LEN);
        out
    };

    #[test]
    fn round_trip() {
        let parsed = Reader { bytes: &BYTES }.interface().unwrap();
        assert_eq!(parsed, Interface::from(&DESC));
        assert_eq!(parsed.methods[0].to_string(), "fn a(&self, u8, &str) -> Point");
        assert_eq!(parsed.methods[1].to_string(), "fn b(&self)  [since minor 1]");
        assert_eq!(parsed.version(), "1.1");
    }

    #[test]
    fn every_truncation_is_an_error() {
        for len in 0..LEN {
            assert!(Reader { bytes: &BYTES[..len] }.interface().is_err(), "length {len}");
        }
    }

    #[test]
    fn lying_counts_do_not_allocate() {
        let mut bytes = BYTES;
        // The method count sits after name (4 + 6), abi, minor and fingerprint.
        bytes[26..30].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Reader { bytes: &bytes }.interface().is_err());
    }

    fn iface(methods: Vec<Method>) -> Interface {
        Interface { name: "t".into(), abi: 1, minor: 0, fingerprint: 0, methods }
    }

    fn ty(text: &str, shape: u64) -> Type {
        Type { text: text.into(), shape, fields: vec![] }
    }

    fn m(name: &str, since: u32, args: Vec<Type>, ret: Type) -> Method {
        Method { name: name.into(), since, args, ret }
    }

    #[test]
    fn prefix_rule() {
        let base = vec![m("a", 0, vec![ty("u8", 1)], ty("()", 3))];
        let mut newer = base.clone();
        newer.push(m("b", 1, vec![], ty("()", 3)));
        assert_eq!(iface(newer.clone()).fit(&iface(base.clone())), Ok(Fit { provided: 1 }));
        assert_eq!(iface(base.clone()).fit(&iface(newer.clone())), Ok(Fit { provided: 1 }));
        // The same addition without `since` is a breaking change.
        let mut unmarked = base.clone();
        unmarked.push(m("b", 0, vec![], ty("()", 3)));
        let why = iface(base).fit(&iface(unmarked)).unwrap_err();
        assert_eq!(why.len(), 1);
        assert!(why[0].contains("`b` is only in the plugin"), "{why:?}");
    }

    #[test]
    fn differences_are_spelled_out() {
        let point = |fields: Vec<(&str, Type)>, shape| Type {
            text: "Point".into(),
            shape,
            fields: fields.into_iter().map(|(n, t)| Field { name: n.into(), ty: t }).collect(),
        };
        let host = iface(vec![
            m("a", 0, vec![ty("&str", 2)], ty("()", 3)),
            m("b", 0, vec![point(vec![("x", ty("u8", 1))], 10)], ty("()", 3)),
            m("c", 0, vec![], ty("u8", 1)),
        ]);
        let plugin = iface(vec![
            m("a", 0, vec![ty("String", 5)], ty("()", 3)),
            m("b", 0, vec![point(vec![("x", ty("u16", 6)), ("z", ty("u8", 1))], 11)], ty("()", 3)),
            m("renamed", 0, vec![], ty("u8", 1)),
        ]);
        let why = host.fit(&plugin).unwrap_err();
        assert_eq!(
            why,
            [
                "method `a` changed: argument 1 is `String` in the plugin, `&str` in the host",
                "method `b` changed: argument 1 `Point`: field `x` is `u16` in the plugin, `u8` in the host",
                "method `b` changed: argument 1 `Point`: field `z` is only in the plugin",
                "method 3 is `renamed` in the plugin, `c` in the host (a method was renamed, removed, inserted or moved)",
            ]
        );
    }
}
