//! The owned model of a contract read back, and its Rust-like `Display`.

use std::fmt;

use super::decode::Reader;
use super::desc::{ASYNC, ContractDesc, Style};
use super::encode::{contract_len, write_contract};

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
    /// The minor version that appended it (0 for the original fields).
    pub since: u32,
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
    /// The minor version that added it (0 for the original variants).
    pub since: u32,
    /// The enum's `#[tomada(other)]` variant.
    pub other: bool,
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
    /// It has a host-side default body (see [`MethodDesc::fallback`](super::MethodDesc::fallback)).
    pub fallback: bool,
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
        match (self.since, self.fallback) {
            (0, false) => {}
            (0, true) => write!(f, "  [default body]")?,
            (n, false) => write!(f, "  [since minor {n}]")?,
            (n, true) => write!(f, "  [since minor {n}, default body run by the host]")?,
        }
        Ok(())
    }
}

impl fmt::Display for TypeDef {
    /// Rust-like: `struct Entry { key: String, tags: Vec<String>, note: String [since 1] }`,
    /// `enum Error { Full, #[other] Unknown, Timeout(u64) [since 1] }` (variants in
    /// wire order).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn since(f: &mut fmt::Formatter<'_>, since: u32) -> fmt::Result {
            if since > 0 { write!(f, " [since {since}]") } else { Ok(()) }
        }
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
                        since(f, field.since)?;
                    }
                    f.write_str(")")
                }
                Style::Named if fields.is_empty() => f.write_str(" {}"),
                Style::Named => {
                    f.write_str(" {")?;
                    for (i, field) in fields.iter().enumerate() {
                        f.write_str(if i > 0 { ", " } else { " " })?;
                        write!(f, "{}: {}", field.name, field.ty)?;
                        since(f, field.since)?;
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
                    if v.other {
                        f.write_str("#[other] ")?;
                    }
                    f.write_str(&v.name)?;
                    fields(f, v.style, &v.fields)?;
                    since(f, v.since)?;
                }
                f.write_str(" }")
            }
        }
    }
}
