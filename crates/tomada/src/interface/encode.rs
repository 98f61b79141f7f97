//! The const encoder: one walk over a description measures, hashes and writes it,
//! so the three always agree (the format is in `docs/manifest.md`).

use super::desc::*;
use crate::fingerprint as fp;

// ---------------------------------------------------------------------------------
// Encoding, at compile time: one walk over the description serves to measure, hash
// and write it, so the three always agree.

/// Type tags of the encoding (see `docs/manifest.md`).
pub(super) mod tag {
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
#[doc(hidden)]
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

    /// A byte that is written but not hashed (what changes no layout).
    const fn unhashed(&mut self, v: u8) {
        if !self.out.is_empty() {
            self.out[self.at] = v;
        }
        self.at += 1;
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
            self.u32(fields[i].since);
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
                        self.u32(t.variants[i].since);
                        self.u8(t.variants[i].other as u8);
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
            self.unhashed(m.fallback as u8);
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
        self.u32(minor(c));
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
#[doc(hidden)]
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
#[doc(hidden)]
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

/// A contract's minor version as written to manifests: the largest `since` of its
/// methods ([`ContractDesc::minor`]) and of every struct field and enum variant its
/// methods use, so a contract that only appends a field still says it is newer.
#[doc(hidden)]
pub const fn minor(c: &ContractDesc) -> u32 {
    let mut seen = [""; MAX_NAMED];
    let mut count = 0;
    let mut max = c.minor;
    let mut i = 0;
    while i < c.methods.len() {
        let m = &c.methods[i];
        let mut j = 0;
        while j < m.args.len() {
            max = max_u32(max, since_in(m.args[j].get(), &mut seen, &mut count));
            j += 1;
        }
        max = max_u32(max, since_in(m.ret.get(), &mut seen, &mut count));
        i += 1;
    }
    max
}

const fn max_u32(a: u32, b: u32) -> u32 {
    if a > b { a } else { b }
}

/// The largest `since` of the fields and variants inside `t` (each named type once).
const fn since_in(t: &TypeDesc, seen: &mut [&'static str; MAX_NAMED], count: &mut usize) -> u32 {
    if matches!(t.kind, Kind::Struct | Kind::Enum | Kind::Object) {
        let mut i = 0;
        while i < *count {
            if str_eq(seen[i], t.key) {
                return 0;
            }
            i += 1;
        }
        if *count < MAX_NAMED {
            seen[*count] = t.key;
            *count += 1;
        }
    }
    // A contract object's own minor version is its own business.
    if matches!(t.kind, Kind::Object) {
        return 0;
    }
    let mut max = 0;
    let mut i = 0;
    while i < t.args.len() {
        max = max_u32(max, since_in(t.args[i].get(), seen, count));
        i += 1;
    }
    let mut i = 0;
    while i < t.fields.len() {
        max = max_u32(max, t.fields[i].since);
        max = max_u32(max, since_in(t.fields[i].ty.get(), seen, count));
        i += 1;
    }
    let mut i = 0;
    while i < t.variants.len() {
        max = max_u32(max, t.variants[i].since);
        let mut j = 0;
        while j < t.variants[i].fields.len() {
            max = max_u32(max, t.variants[i].fields[j].since);
            max = max_u32(max, since_in(t.variants[i].fields[j].ty.get(), seen, count));
            j += 1;
        }
        i += 1;
    }
    max
}
