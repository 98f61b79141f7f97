//! A contract's description: its methods in order, with every type that crosses them
//! described whole (type arguments, struct fields, enum variants), and the minor
//! version that added each method.
//!
//! Each boundary type describes itself ([`Abi::DESC`](crate::Abi::DESC), a
//! [`TypeDesc`]); `#[contract]` gathers them into a [`ContractDesc`] at compile time;
//! [`export!`](crate::export) writes it into the plugin's manifest and
//! [`expects!`](crate::expects) into a host executable, both as pointer-free bytes (the
//! format is in `docs/manifest.md`). Read back they are an [`Interface`], and
//! [`Interface::fit`] says whether a plugin fits a host and, if not, what differs — down
//! to the field of the struct inside the `Vec` that changed.
//!
//! The layout fingerprint is the FNV-1a hash (see [`crate::fingerprint`]) of the
//! encoded methods: any change to a method, its order, or any type anywhere inside its
//! signature changes it; argument names and docs do not.
//!
//! # Evolving a contract
//! The ABI number is the contract's major version: any change there means rebuild.
//! Methods appended at the end of the trait with `#[tomada(since = N)]` raise its minor
//! version to `N` without breaking anyone: a plugin built against an older minor loads
//! into a newer host (calling a method it lacks returns
//! [`CallError::NotProvided`](crate::CallError::NotProvided)), and a newer plugin loads
//! into an older host. Anything else — a method removed, renamed, reordered or
//! retyped, a struct field or enum variant changed — is refused, with the difference
//! spelled out.

use std::collections::HashSet;
use std::fmt;

use crate::fingerprint as fp;

/// A reference to a type's description. A raw pointer rather than a reference so that
/// recursive types (`struct Node { children: Vec<Node> }`) can describe themselves:
/// descriptions of derived types are statics, which may refer to each other in cycles.
#[derive(Clone, Copy)]
pub struct TypeRef(*const TypeDesc);

// SAFETY: a `TypeRef` only ever points to an immutable `TypeDesc` that lives for the
// whole program (a static, or a constant's promoted value).
unsafe impl Sync for TypeRef {}
// SAFETY: as above.
unsafe impl Send for TypeRef {}

impl TypeRef {
    /// Refers to a description.
    pub const fn new(desc: &'static TypeDesc) -> Self {
        Self(desc)
    }

    /// The description.
    pub const fn get(self) -> &'static TypeDesc {
        // SAFETY: made by `new` from a `&'static TypeDesc`.
        unsafe { &*self.0 }
    }
}

impl fmt::Debug for TypeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get().name)
    }
}

/// What kind of type a [`TypeDesc`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A type without parts: `u8`, `String`, `&str`, `()`.
    Leaf,
    /// A generic type: `Vec<T>`, `Option<T>`, `HashMap<K, V>`, `&[T]` (named `&[]`).
    Generic,
    /// A tuple.
    Tuple,
    /// An array `[T; N]`.
    Array,
    /// A struct with `#[derive(Abi)]`.
    Struct,
    /// An enum with `#[derive(Abi)]`.
    Enum,
    /// A trait object of a contract (`dyn Host` inside `Box`, `Arc` or `&`): `name` is
    /// `dyn` and the contract's name, `len` its ABI, `methods` its methods.
    Object,
}

/// How a struct or an enum variant writes its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// No fields: `struct Unit;`, `Variant`.
    Unit,
    /// Positional fields: `struct P(u8, u8);`, `Variant(u8)`.
    Tuple,
    /// Named fields: `struct P { x: u8 }`, `Variant { x: u8 }`.
    Named,
}

/// A boundary type, as [`Abi::DESC`](crate::Abi::DESC) describes it.
#[derive(Debug, Clone, Copy)]
pub struct TypeDesc {
    /// What kind of type.
    pub kind: Kind,
    /// `u8`, `Vec`, `Entry`, ... (empty for tuples and arrays).
    pub name: &'static str,
    /// For structs and enums, a key unique to the type (its module path and name).
    pub key: &'static str,
    /// Type arguments (generics, tuples) or the element type (arrays).
    pub args: &'static [TypeRef],
    /// An array's length.
    pub len: u64,
    /// How a struct writes its fields.
    pub style: Style,
    /// A struct's fields.
    pub fields: &'static [FieldDesc],
    /// An enum's variants.
    pub variants: &'static [VariantDesc],
    /// A contract object's methods.
    pub methods: &'static [MethodDesc],
}

impl TypeDesc {
    const EMPTY: TypeDesc = TypeDesc {
        kind: Kind::Leaf,
        name: "",
        key: "",
        args: &[],
        len: 0,
        style: Style::Unit,
        fields: &[],
        variants: &[],
        methods: &[],
    };

    /// A type without parts.
    pub const fn leaf(name: &'static str) -> Self {
        TypeDesc { kind: Kind::Leaf, name, ..Self::EMPTY }
    }

    /// A generic type `name<args...>`.
    pub const fn generic(name: &'static str, args: &'static [TypeRef]) -> Self {
        TypeDesc { kind: Kind::Generic, name, args, ..Self::EMPTY }
    }

    /// A tuple.
    pub const fn tuple(args: &'static [TypeRef]) -> Self {
        TypeDesc { kind: Kind::Tuple, args, ..Self::EMPTY }
    }

    /// An array `[elem; len]` (`elem` is a one-element slice, so it can be `'static`).
    pub const fn array(elem: &'static [TypeRef; 1], len: u64) -> Self {
        TypeDesc { kind: Kind::Array, args: elem, len, ..Self::EMPTY }
    }

    /// A struct.
    pub const fn record(name: &'static str, key: &'static str, style: Style, fields: &'static [FieldDesc]) -> Self {
        TypeDesc { kind: Kind::Struct, name, key, style, fields, ..Self::EMPTY }
    }

    /// A contract's trait object: `name` is `dyn` and the contract's name, `key` the
    /// contract's name.
    pub const fn object(name: &'static str, key: &'static str, abi: u32, methods: &'static [MethodDesc]) -> Self {
        TypeDesc { kind: Kind::Object, name, key, len: abi as u64, methods, ..Self::EMPTY }
    }

    /// An enum.
    pub const fn variant(name: &'static str, key: &'static str, variants: &'static [VariantDesc]) -> Self {
        TypeDesc { kind: Kind::Enum, name, key, variants, ..Self::EMPTY }
    }
}

/// A field of a struct or an enum variant.
#[derive(Debug, Clone, Copy)]
pub struct FieldDesc {
    /// The field's name (`0`, `1`, ... for positional fields).
    pub name: &'static str,
    /// The field's type.
    pub ty: TypeRef,
}

/// A variant of an enum.
#[derive(Debug, Clone, Copy)]
pub struct VariantDesc {
    /// The variant's name.
    pub name: &'static str,
    /// How it writes its fields.
    pub style: Style,
    /// Its fields.
    pub fields: &'static [FieldDesc],
}

/// A contract method.
#[derive(Debug, Clone, Copy)]
pub struct MethodDesc {
    /// The method's name.
    pub name: &'static str,
    /// The minor version that added it (0 for the original methods).
    pub since: u32,
    /// Its arguments after `&self`.
    pub args: &'static [TypeRef],
    /// Its result.
    pub ret: TypeRef,
}

/// The name of the pseudo-type an `async fn`'s result is described as: `async<R>`.
/// A method that returns it reads back as `async fn name(..) -> R`; it fits no plain
/// method (`async` is a keyword, so no type is named so).
pub const ASYNC: &str = "async";

/// A whole contract, as `#[contract]` describes it at compile time.
#[derive(Debug, Clone, Copy)]
pub struct ContractDesc {
    /// e.g. `pluginapi::Greeter`.
    pub name: &'static str,
    /// The major version.
    pub abi: u32,
    /// The minor version: the largest `since` of its methods.
    pub minor: u32,
    /// Its methods, in vtable order.
    pub methods: &'static [MethodDesc],
}

// ---------------------------------------------------------------------------------
// Encoding, at compile time: one walk over the description serves to measure, hash
// and write it, so the three always agree.

/// Type tags of the encoding (see `docs/manifest.md`).
mod tag {
    pub const LEAF: u8 = 0;
    pub const GENERIC: u8 = 1;
    pub const TUPLE: u8 = 2;
    pub const ARRAY: u8 = 3;
    pub const STRUCT: u8 = 4;
    pub const ENUM: u8 = 5;
    pub const REF: u8 = 6;
    pub const OBJECT: u8 = 7;
}

/// The most structs and enums one contract may use.
pub const MAX_NAMED: usize = 512;

/// Where a walk puts its bytes: counts them, hashes them, and writes them if it has
/// somewhere to.
struct Sink<'a> {
    out: &'a mut [u8],
    at: usize,
    hash: u64,
    named: [&'static str; MAX_NAMED],
    count: usize,
}

impl<'a> Sink<'a> {
    const fn new(out: &'a mut [u8], at: usize) -> Self {
        Sink { out, at, hash: fp::START, named: [""; MAX_NAMED], count: 0 }
    }

    const fn bytes(&mut self, bytes: &[u8]) {
        if !self.out.is_empty() {
            let mut i = 0;
            while i < bytes.len() {
                self.out[self.at + i] = bytes[i];
                i += 1;
            }
        }
        self.hash = fp::bytes(self.hash, bytes);
        self.at += bytes.len();
    }

    const fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }

    const fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }

    const fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    const fn str(&mut self, s: &str) {
        assert!(s.len() <= u32::MAX as usize, "string too long for a manifest");
        self.u32(s.len() as u32);
        self.bytes(s.as_bytes());
    }

    /// The index of a named type already written, if it was.
    const fn find(&self, key: &str) -> Option<u32> {
        let mut i = 0;
        while i < self.count {
            if str_eq(self.named[i], key) {
                return Some(i as u32);
            }
            i += 1;
        }
        None
    }

    const fn fields(&mut self, fields: &'static [FieldDesc]) {
        self.u32(fields.len() as u32);
        let mut i = 0;
        while i < fields.len() {
            self.str(fields[i].name);
            self.ty(fields[i].ty);
            i += 1;
        }
    }

    const fn style(&mut self, style: Style) {
        self.u8(match style {
            Style::Unit => 0,
            Style::Tuple => 1,
            Style::Named => 2,
        });
    }

    const fn ty(&mut self, t: TypeRef) {
        let t = t.get();
        match t.kind {
            Kind::Leaf => {
                self.u8(tag::LEAF);
                self.str(t.name);
            }
            Kind::Generic | Kind::Tuple => {
                if matches!(t.kind, Kind::Generic) {
                    self.u8(tag::GENERIC);
                    self.str(t.name);
                } else {
                    self.u8(tag::TUPLE);
                }
                self.u32(t.args.len() as u32);
                let mut i = 0;
                while i < t.args.len() {
                    self.ty(t.args[i]);
                    i += 1;
                }
            }
            Kind::Array => {
                self.u8(tag::ARRAY);
                self.u64(t.len);
                self.ty(t.args[0]);
            }
            Kind::Struct | Kind::Enum | Kind::Object => {
                if let Some(index) = self.find(t.key) {
                    self.u8(tag::REF);
                    self.u32(index);
                    return;
                }
                assert!(self.count < MAX_NAMED, "a contract may use at most 512 structs and enums");
                self.named[self.count] = t.key;
                self.count += 1;
                if matches!(t.kind, Kind::Object) {
                    self.u8(tag::OBJECT);
                    self.str(t.name);
                    self.u32(t.len as u32);
                    self.methods(t.methods);
                } else if matches!(t.kind, Kind::Struct) {
                    self.u8(tag::STRUCT);
                    self.str(t.name);
                    self.style(t.style);
                    self.fields(t.fields);
                } else {
                    self.u8(tag::ENUM);
                    self.str(t.name);
                    self.u32(t.variants.len() as u32);
                    let mut i = 0;
                    while i < t.variants.len() {
                        self.str(t.variants[i].name);
                        self.style(t.variants[i].style);
                        self.fields(t.variants[i].fields);
                        i += 1;
                    }
                }
            }
        }
    }

    const fn methods(&mut self, methods: &'static [MethodDesc]) {
        self.u32(methods.len() as u32);
        let mut i = 0;
        while i < methods.len() {
            let m = &methods[i];
            self.str(m.name);
            self.u32(m.since);
            self.u32(m.args.len() as u32);
            let mut j = 0;
            while j < m.args.len() {
                self.ty(m.args[j]);
                j += 1;
            }
            self.ty(m.ret);
            i += 1;
        }
    }

    const fn contract(&mut self, c: &ContractDesc) {
        self.str(c.name);
        self.u32(c.abi);
        self.u32(c.minor);
        self.u64(fingerprint(c));
        self.methods(c.methods);
    }
}

pub(crate) const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether a type, anywhere inside, holds a contract object (`Box<dyn C>`, ...).
pub const fn has_objects(t: TypeRef) -> bool {
    let mut seen = [""; MAX_NAMED];
    let mut count = 0;
    objects_in(t.get(), &mut seen, &mut count)
}

const fn objects_in(t: &TypeDesc, seen: &mut [&'static str; MAX_NAMED], count: &mut usize) -> bool {
    match t.kind {
        Kind::Object => return true,
        Kind::Struct | Kind::Enum => {
            let mut i = 0;
            while i < *count {
                if str_eq(seen[i], t.key) {
                    return false;
                }
                i += 1;
            }
            if *count < MAX_NAMED {
                seen[*count] = t.key;
                *count += 1;
            }
        }
        _ => {}
    }
    let mut i = 0;
    while i < t.args.len() {
        if objects_in(t.args[i].get(), seen, count) {
            return true;
        }
        i += 1;
    }
    let mut i = 0;
    while i < t.fields.len() {
        if objects_in(t.fields[i].ty.get(), seen, count) {
            return true;
        }
        i += 1;
    }
    let mut i = 0;
    while i < t.variants.len() {
        let mut j = 0;
        while j < t.variants[i].fields.len() {
            if objects_in(t.variants[i].fields[j].ty.get(), seen, count) {
                return true;
            }
            j += 1;
        }
        i += 1;
    }
    false
}

/// The layout fingerprint of a contract: the hash of its encoded methods.
pub const fn fingerprint(c: &ContractDesc) -> u64 {
    let mut sink = Sink::new(&mut [], 0);
    sink.methods(c.methods);
    sink.hash
}

/// The number of bytes [`write_contract`] writes for `c`.
pub(crate) const fn contract_len(c: &ContractDesc) -> usize {
    let mut sink = Sink::new(&mut [], 0);
    sink.contract(c);
    sink.at
}

/// Writes `c` at `at`; returns the end.
pub(crate) const fn write_contract(out: &mut [u8], at: usize, c: &ContractDesc) -> usize {
    let mut sink = Sink::new(out, at);
    sink.contract(c);
    sink.at
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

pub(crate) const fn str_len(s: &str) -> usize {
    4 + s.len()
}

pub(crate) const fn put_str(out: &mut [u8], at: usize, s: &str) -> usize {
    assert!(s.len() <= u32::MAX as usize, "string too long for a manifest");
    let at = put_u32(out, at, s.len() as u32);
    put(out, at, s.as_bytes())
}

// ---------------------------------------------------------------------------------
// Read back: owned values, from bytes that may be hostile.

/// A boundary type, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    /// `u8`, `String`, `&str`, ...
    Leaf(String),
    /// `Vec<T>`, `Option<T>`, `HashMap<K, V>`, `&[T]` (named `&[]`), ...
    Generic {
        /// `Vec`, `Option`, ...
        name: String,
        /// The type arguments.
        args: Vec<Type>,
    },
    /// A tuple.
    Tuple(Vec<Type>),
    /// An array.
    Array {
        /// The element type.
        elem: Box<Type>,
        /// The length.
        len: u64,
    },
    /// A struct or enum, defined in [`Interface::types`].
    Named {
        /// Its name.
        name: String,
        /// Its index in [`Interface::types`].
        index: usize,
    },
}

/// A struct or enum used by a contract, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeDef {
    /// Its name.
    pub name: String,
    /// Its fields or variants.
    pub body: Body,
}

/// What a [`TypeDef`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A struct.
    Struct {
        /// How it writes its fields.
        style: Style,
        /// Its fields, in order.
        fields: Vec<Field>,
    },
    /// An enum.
    Enum {
        /// Its variants, in order.
        variants: Vec<Variant>,
    },
    /// A contract whose trait objects cross.
    Object {
        /// The contract's ABI number.
        abi: u32,
        /// Its methods.
        methods: Vec<Method>,
    },
}

/// A field, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field's name.
    pub name: String,
    /// Its type.
    pub ty: Type,
}

/// An enum variant, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Its name.
    pub name: String,
    /// How it writes its fields.
    pub style: Style,
    /// Its fields.
    pub fields: Vec<Field>,
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
    /// The structs and enums the methods use, in order of first use.
    pub types: Vec<TypeDef>,
}

impl From<&ContractDesc> for Interface {
    fn from(c: &ContractDesc) -> Interface {
        let mut bytes = vec![0; contract_len(c)];
        write_contract(&mut bytes, 0, c);
        Reader { bytes: &bytes }.interface().expect("a description encoded by tomada reads back")
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Leaf(name) | Type::Named { name, .. } => f.write_str(name),
            Type::Generic { name, args } if name == "&[]" && args.len() == 1 => write!(f, "&[{}]", args[0]),
            Type::Generic { name, args } if name == "&" && args.len() == 1 => write!(f, "&{}", args[0]),
            Type::Generic { name, args } => {
                write!(f, "{name}<")?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(">")
            }
            Type::Tuple(items) => {
                f.write_str("(")?;
                for (i, a) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(if items.len() == 1 { ",)" } else { ")" })
            }
            Type::Array { elem, len } => write!(f, "[{elem}; {len}]"),
        }
    }
}

impl Method {
    /// Whether the method is `async fn`; its result is then [`Method::output`].
    pub fn is_async(&self) -> bool {
        matches!(&self.ret, Type::Generic { name, args } if name == ASYNC && args.len() == 1)
    }

    /// What the method (or, for an `async fn`, its future) returns.
    pub fn output(&self) -> &Type {
        match &self.ret {
            Type::Generic { name, args } if name == ASYNC && args.len() == 1 => &args[0],
            other => other,
        }
    }
}

impl fmt::Display for Method {
    /// `fn name(&self, A, B) -> R` (`async fn` for an async method), with
    /// `[since minor N]` for minor additions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keyword = if self.is_async() { "async fn" } else { "fn" };
        write!(f, "{keyword} {}(&self", self.name)?;
        for a in &self.args {
            write!(f, ", {a}")?;
        }
        write!(f, ")")?;
        if *self.output() != Type::Leaf("()".into()) {
            write!(f, " -> {}", self.output())?;
        }
        if self.since > 0 {
            write!(f, "  [since minor {}]", self.since)?;
        }
        Ok(())
    }
}

impl fmt::Display for TypeDef {
    /// Rust-like: `struct Entry { key: String, tags: Vec<String> }`,
    /// `enum Error { Full, Other(String) }`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn fields(f: &mut fmt::Formatter<'_>, style: Style, fields: &[Field]) -> fmt::Result {
            match style {
                Style::Unit => Ok(()),
                Style::Tuple => {
                    f.write_str("(")?;
                    for (i, field) in fields.iter().enumerate() {
                        if i > 0 {
                            f.write_str(", ")?;
                        }
                        write!(f, "{}", field.ty)?;
                    }
                    f.write_str(")")
                }
                Style::Named if fields.is_empty() => f.write_str(" {}"),
                Style::Named => {
                    f.write_str(" {")?;
                    for (i, field) in fields.iter().enumerate() {
                        f.write_str(if i > 0 { ", " } else { " " })?;
                        write!(f, "{}: {}", field.name, field.ty)?;
                    }
                    f.write_str(" }")
                }
            }
        }
        match &self.body {
            Body::Struct { style, fields: fs } => {
                write!(f, "struct {}", self.name)?;
                fields(f, *style, fs)
            }
            Body::Object { abi, methods } => {
                write!(f, "trait {} (ABI {abi}) {{", self.name.trim_start_matches("dyn "))?;
                for (i, m) in methods.iter().enumerate() {
                    f.write_str(if i > 0 { "; " } else { " " })?;
                    write!(f, "{m}")?;
                }
                f.write_str(" }")
            }
            Body::Enum { variants } => {
                write!(f, "enum {} {{", self.name)?;
                for (i, v) in variants.iter().enumerate() {
                    f.write_str(if i > 0 { ", " } else { " " })?;
                    f.write_str(&v.name)?;
                    fields(f, v.style, &v.fields)?;
                }
                f.write_str(" }")
            }
        }
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
    /// Every difference found, in words, method by method, pointing inside types.
    ///
    /// # Examples
    /// ```
    /// use tomada::interface::Interface;
    /// # use tomada::Contract;
    /// #[derive(tomada::Abi)]
    /// pub struct Entry { pub key: String, pub tags: Vec<String> }
    /// mod changed {
    ///     #[derive(tomada::Abi)]
    ///     pub struct Entry { pub key: String, pub tags: Vec<u64> }
    /// }
    /// #[tomada::contract(abi = 1, name = "demo::Api")]
    /// pub trait V10 { fn put(&self, entry: Entry) -> bool; }
    /// #[tomada::contract(abi = 1, name = "demo::Api")]
    /// pub trait V11 {
    ///     fn put(&self, entry: Entry) -> bool;
    ///     #[tomada(since = 1)]
    ///     fn count(&self) -> u64;
    /// }
    /// #[tomada::contract(abi = 1, name = "demo::Api")]
    /// pub trait Changed { fn put(&self, entry: changed::Entry) -> bool; }
    ///
    /// let v10 = Interface::from(&<dyn V10 as Contract>::DESCRIPTION);
    /// let v11 = Interface::from(&<dyn V11 as Contract>::DESCRIPTION);
    /// let changed = Interface::from(&<dyn Changed as Contract>::DESCRIPTION);
    /// assert_eq!(v11.fit(&v10).unwrap().provided, 1); // old plugin, new host: `count` missing
    /// assert_eq!(v10.fit(&v11).unwrap().provided, 1); // new plugin, old host: all it knows
    /// let why = v10.fit(&changed).unwrap_err();
    /// assert_eq!(why, ["method `put` changed: argument 1 `Entry`, field `tags` is `Vec<u64>` in the plugin, `Vec<String>` in the host"]);
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
            Compare { host, plugin, seen: HashSet::new(), why: &mut why }.method(h, p);
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

/// Walks a host's and a plugin's type side by side and says where they differ.
struct Compare<'a, 'w> {
    host: &'a Interface,
    plugin: &'a Interface,
    /// Pairs of named types already compared (recursive types end here).
    seen: HashSet<(usize, usize)>,
    why: &'w mut Vec<String>,
}

impl Compare<'_, '_> {
    fn method(&mut self, h: &Method, p: &Method) {
        let name = &h.name;
        if h.is_async() != p.is_async() {
            let kind = |m: &Method| if m.is_async() { "`async fn`" } else { "a plain `fn`" };
            self.why.push(format!("method `{name}` is {} in the plugin, {} in the host", kind(p), kind(h)));
            return;
        }
        if h.since != p.since {
            self.why.push(format!(
                "method `{name}` was added in minor {} per the plugin, {} per the host",
                p.since, h.since
            ));
        }
        if h.args.len() != p.args.len() {
            self.why.push(format!(
                "method `{name}` changed: it takes {} argument(s) in the plugin, {} in the host",
                p.args.len(),
                h.args.len()
            ));
        } else {
            for (j, (ha, pa)) in h.args.iter().zip(&p.args).enumerate() {
                self.ty(&format!("method `{name}` changed: argument {}", j + 1), ha, pa);
            }
        }
        self.ty(&format!("method `{name}` changed: the result"), h.output(), p.output());
    }

    /// Whether two types are written the same (struct and enum definitions aside:
    /// those are compared by [`Compare::def`]).
    fn same_written(h: &Type, p: &Type) -> bool {
        match (h, p) {
            (Type::Leaf(a), Type::Leaf(b)) => a == b,
            (Type::Generic { name: a, args: x }, Type::Generic { name: b, args: y }) => {
                a == b && x.len() == y.len() && x.iter().zip(y).all(|(x, y)| Self::same_written(x, y))
            }
            (Type::Tuple(x), Type::Tuple(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| Self::same_written(x, y))
            }
            (Type::Array { elem: a, len: m }, Type::Array { elem: b, len: n }) => m == n && Self::same_written(a, b),
            (Type::Named { name: a, .. }, Type::Named { name: b, .. }) => a == b,
            _ => false,
        }
    }

    fn ty(&mut self, at: &str, h: &Type, p: &Type) {
        if !Self::same_written(h, p) {
            self.why.push(format!("{at} is `{p}` in the plugin, `{h}` in the host"));
            return;
        }
        // Written the same: any difference is inside a struct or enum it uses.
        match (h, p) {
            (Type::Generic { args: x, .. }, Type::Generic { args: y, .. }) | (Type::Tuple(x), Type::Tuple(y)) => {
                for (a, b) in x.iter().zip(y) {
                    self.ty(at, a, b);
                }
            }
            (Type::Array { elem: a, .. }, Type::Array { elem: b, .. }) => self.ty(at, a, b),
            (Type::Named { name, index: hi }, Type::Named { index: pi, .. }) => {
                if !self.seen.insert((*hi, *pi)) {
                    return;
                }
                let (Some(hd), Some(pd)) = (self.host.types.get(*hi), self.plugin.types.get(*pi)) else {
                    return;
                };
                self.def(&format!("{at} `{name}`"), hd, pd);
            }
            _ => {}
        }
    }

    fn def(&mut self, at: &str, h: &TypeDef, p: &TypeDef) {
        match (&h.body, &p.body) {
            (Body::Struct { style: hs, fields: hf }, Body::Struct { style: ps, fields: pf }) => {
                if hs != ps {
                    self.why.push(format!("{at} is a {ps:?}-style struct in the plugin, {hs:?}-style in the host"));
                    return;
                }
                self.fields(at, hf, pf);
            }
            (Body::Enum { variants: hv }, Body::Enum { variants: pv }) => {
                let names = |v: &[Variant]| v.iter().map(|v| v.name.clone()).collect::<Vec<_>>();
                let (hn, pn) = (names(hv), names(pv));
                if hn != pn {
                    let only =
                        |a: &[String], b: &[String]| a.iter().filter(|n| !b.contains(n)).cloned().collect::<Vec<_>>();
                    let (in_plugin, in_host) = (only(&pn, &hn), only(&hn, &pn));
                    for v in &in_plugin {
                        self.why.push(format!("{at}: variant `{v}` is only in the plugin"));
                    }
                    for v in &in_host {
                        self.why.push(format!("{at}: variant `{v}` is only in the host"));
                    }
                    if in_plugin.is_empty() && in_host.is_empty() {
                        self.why.push(format!(
                            "{at}: variants are in another order ({} in the plugin, {} in the host)",
                            pn.join(", "),
                            hn.join(", ")
                        ));
                    }
                    return;
                }
                for (a, b) in hv.iter().zip(pv) {
                    let at = format!("{at}, variant `{}`", a.name);
                    if a.style != b.style {
                        self.why
                            .push(format!("{at} has {:?} fields in the plugin, {:?} in the host", b.style, a.style));
                        continue;
                    }
                    self.fields(&at, &a.fields, &b.fields);
                }
            }
            (Body::Object { abi: ha, methods: hm }, Body::Object { abi: pa, methods: pm }) => {
                if ha != pa {
                    self.why.push(format!("{at} is ABI {pa} in the plugin, ABI {ha} in the host"));
                    return;
                }
                let names = |ms: &[Method]| ms.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
                if names(hm) != names(pm) {
                    self.why.push(format!(
                        "{at}: its methods are {} in the plugin, {} in the host",
                        names(pm).join(", "),
                        names(hm).join(", ")
                    ));
                    return;
                }
                for (h, p) in hm.iter().zip(pm) {
                    let at = format!("{at}, method `{}`", h.name);
                    if h.args.len() != p.args.len() {
                        self.why.push(format!(
                            "{at} takes {} argument(s) in the plugin, {} in the host",
                            p.args.len(),
                            h.args.len()
                        ));
                        continue;
                    }
                    for (j, (ha, pa)) in h.args.iter().zip(&p.args).enumerate() {
                        self.ty(&format!("{at}, argument {}", j + 1), ha, pa);
                    }
                    self.ty(&format!("{at}, the result"), &h.ret, &p.ret);
                }
            }
            (h, p) => {
                let kind = |b: &Body| match b {
                    Body::Struct { .. } => "a struct",
                    Body::Enum { .. } => "an enum",
                    Body::Object { .. } => "a contract object",
                };
                self.why.push(format!("{at} is {} in the plugin, {} in the host", kind(p), kind(h)));
            }
        }
    }

    fn fields(&mut self, at: &str, h: &[Field], p: &[Field]) {
        let before = self.why.len();
        for hf in h {
            match p.iter().find(|pf| pf.name == hf.name) {
                None => self.why.push(format!("{at}, field `{}` is only in the host", hf.name)),
                Some(pf) => self.ty(&format!("{at}, field `{}`", hf.name), &hf.ty, &pf.ty),
            }
        }
        for pf in p.iter().filter(|pf| !h.iter().any(|hf| hf.name == pf.name)) {
            self.why.push(format!("{at}, field `{}` is only in the plugin", pf.name));
        }
        let order = |fs: &[Field]| fs.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ");
        if self.why.len() == before && order(h) != order(p) {
            self.why.push(format!(
                "{at}: fields are in another order ({} in the plugin, {} in the host)",
                order(p),
                order(h)
            ));
        }
    }
}

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
        let n = self.count(4 + 2)?;
        let mut fields = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.string()?;
            fields.push(Field { name, ty: self.ty(types, depth + 1)? });
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
                    let n = self.count(4 + 1 + 4)?;
                    let mut variants = Vec::with_capacity(n);
                    for _ in 0..n {
                        let name = self.string()?;
                        let style = self.style()?;
                        variants.push(Variant { name, style, fields: self.fields(types, depth)? });
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
        let n = self.count(4 + 4 + 4 + 2)?;
        let mut methods = Vec::with_capacity(n);
        for _ in 0..n {
            let name = self.string()?;
            let since = self.u32()?;
            let argc = self.count(2)?;
            let mut args = Vec::with_capacity(argc);
            for _ in 0..argc {
                args.push(self.ty(types, 0)?);
            }
            let ret = self.ty(types, 0)?;
            methods.push(Method { name, since, args, ret });
        }
        Ok(methods)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Contract;

    #[allow(dead_code)] // the contracts exist for their descriptions
    mod v1 {
        #[derive(crate::Abi)]
        pub struct Entry {
            pub key: String,
            pub tags: Vec<String>,
            pub kind: Kind,
            pub next: Option<Box<Entry>>,
        }
        #[derive(crate::Abi)]
        pub enum Kind {
            Text,
            Blob(Vec<u8>),
        }
        #[crate::contract(abi = 1, name = "t::Api")]
        pub trait Api {
            fn put(&self, entries: Vec<Entry>) -> Result<u64, Kind>;
            fn names(&self) -> std::collections::HashMap<String, (u8, [u16; 2])>;
            #[tomada(since = 1)]
            fn later(&self);
        }
    }

    #[allow(dead_code)]
    mod v2 {
        #[derive(crate::Abi)]
        pub struct Entry {
            pub key: String,
            pub tags: Vec<u64>,
            pub kind: Kind,
            pub next: Option<Box<Entry>>,
        }
        #[derive(crate::Abi)]
        pub enum Kind {
            Text,
            Blob(Vec<u8>),
            Link { to: String },
        }
        #[crate::contract(abi = 1, name = "t::Api")]
        pub trait Api {
            fn put(&self, entries: Vec<Entry>) -> Result<u64, Kind>;
            fn names(&self) -> std::collections::HashMap<String, (u8, [u16; 3])>;
        }
    }

    const LEN: usize = contract_len(&<dyn v1::Api as Contract>::DESCRIPTION);
    static BYTES: [u8; LEN] = {
        let mut out = [0u8; LEN];
        let end = write_contract(&mut out, 0, &<dyn v1::Api as Contract>::DESCRIPTION);
        assert!(end == LEN);
        out
    };

    #[test]
    fn round_trip_with_recursive_types() {
        let parsed = Reader { bytes: &BYTES }.interface().unwrap();
        assert_eq!(parsed, Interface::from(&<dyn v1::Api as Contract>::DESCRIPTION));
        assert_eq!(parsed.methods[0].to_string(), "fn put(&self, Vec<Entry>) -> Result<u64, Kind>");
        assert_eq!(parsed.methods[1].to_string(), "fn names(&self) -> HashMap<String, (u8, [u16; 2])>");
        assert_eq!(parsed.methods[2].to_string(), "fn later(&self)  [since minor 1]");
        let defs: Vec<String> = parsed.types.iter().map(ToString::to_string).collect();
        assert_eq!(
            defs,
            [
                "struct Entry { key: String, tags: Vec<String>, kind: Kind, next: Option<Box<Entry>> }",
                "enum Kind { Text, Blob(Vec<u8>) }"
            ]
        );
        assert_eq!(parsed.version(), "1.1");
        assert_eq!(parsed.fingerprint, <dyn v1::Api as Contract>::FINGERPRINT);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for len in 0..LEN {
            assert!(Reader { bytes: &BYTES[..len] }.interface().is_err(), "length {len}");
        }
    }

    #[test]
    fn lying_counts_and_references_are_errors() {
        let mut bytes = BYTES;
        // The method count sits after name (4 + 6), abi, minor and fingerprint.
        bytes[26..30].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Reader { bytes: &bytes }.interface().is_err());
        // A reference to a type not defined yet.
        let mut bytes = BYTES.to_vec();
        let at = bytes.iter().position(|&b| b == tag::STRUCT).unwrap();
        bytes[at] = tag::REF;
        bytes[at + 1..at + 5].copy_from_slice(&7u32.to_le_bytes());
        assert!(Reader { bytes: &bytes }.interface().is_err());
    }

    #[test]
    fn differences_inside_types_are_spelled_out() {
        let host = Interface::from(&<dyn v1::Api as Contract>::DESCRIPTION);
        let plugin = Interface::from(&<dyn v2::Api as Contract>::DESCRIPTION);
        assert_ne!(host.fingerprint, plugin.fingerprint);
        let why = host.fit(&plugin).unwrap_err();
        assert_eq!(
            why,
            [
                "method `put` changed: argument 1 `Entry`, field `tags` is `Vec<u64>` in the plugin, `Vec<String>` in the host",
                "method `put` changed: argument 1 `Entry`, field `kind` `Kind`: variant `Link` is only in the plugin",
                "method `names` changed: the result is `HashMap<String, (u8, [u16; 3])>` in the plugin, `HashMap<String, (u8, [u16; 2])>` in the host",
            ]
        );
    }

    #[test]
    fn the_prefix_rule() {
        let newer = Interface::from(&<dyn v1::Api as Contract>::DESCRIPTION);
        let mut older = newer.clone();
        older.methods.pop();
        assert_eq!(newer.fit(&older), Ok(Fit { provided: 2 }));
        assert_eq!(older.fit(&newer), Ok(Fit { provided: 2 }));
        let mut unmarked = newer.clone();
        unmarked.methods[2].since = 0;
        let why = older.fit(&unmarked).unwrap_err();
        assert!(why[0].contains("`later` is only in the plugin"), "{why:?}");
    }
}
