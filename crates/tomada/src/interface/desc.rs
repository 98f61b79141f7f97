//! The static descriptions: what `Abi::DESC` and `#[contract]` write at compile time.

use std::fmt;

/// A reference to a type's description. A raw pointer rather than a reference so that
/// recursive types (`struct Node { children: Vec<Node> }`) can describe themselves:
/// descriptions of derived types are statics, which may refer to each other in cycles.
#[derive(Clone, Copy)]
#[doc(hidden)]
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
#[doc(hidden)]
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
#[doc(hidden)]
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
#[doc(hidden)]
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
    /// An enum's variants, in wire order: by the minor version that added them, then
    /// as declared.
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
#[doc(hidden)]
pub struct FieldDesc {
    /// The field's name (`0`, `1`, ... for positional fields).
    pub name: &'static str,
    /// The minor version that appended it (`#[tomada(since = N)]`), 0 for the
    /// original fields.
    pub since: u32,
    /// The field's type.
    pub ty: TypeRef,
}

/// A variant of an enum.
#[derive(Debug, Clone, Copy)]
#[doc(hidden)]
pub struct VariantDesc {
    /// The variant's name.
    pub name: &'static str,
    /// How it writes its fields.
    pub style: Style,
    /// The minor version that added it (`#[tomada(since = N)]`), 0 for the original
    /// variants.
    pub since: u32,
    /// It is the enum's `#[tomada(other)]` variant: what a variant this side does not
    /// know arrives as. An enum with one is *open*.
    pub other: bool,
    /// Its fields.
    pub fields: &'static [FieldDesc],
}

/// A contract method.
#[derive(Debug, Clone, Copy)]
#[doc(hidden)]
pub struct MethodDesc {
    /// The method's name.
    pub name: &'static str,
    /// The minor version that added it (0 for the original methods).
    pub since: u32,
    /// It has a default body, which the host runs for a plugin that predates it.
    /// Not part of the layout fingerprint: a body changes no layout.
    pub fallback: bool,
    /// Its arguments after `&self`.
    pub args: &'static [TypeRef],
    /// Its result.
    pub ret: TypeRef,
}

/// The name of the pseudo-type an `async fn`'s result is described as: `async<R>`.
/// A method that returns it reads back as `async fn name(..) -> R`; it fits no plain
/// method (`async` is a keyword, so no type is named so).
#[doc(hidden)]
pub const ASYNC: &str = "async";

/// A whole contract, as `#[contract]` describes it at compile time.
#[derive(Debug, Clone, Copy)]
#[doc(hidden)]
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
