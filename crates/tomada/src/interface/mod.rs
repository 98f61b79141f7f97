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
//! Within it, a contract grows by minor versions (`#[tomada(since = N)]`): methods
//! appended at the end of the trait (a plugin that predates one answers
//! [`CallError::NotProvided`](crate::CallError::NotProvided), or the host runs the
//! method's default body), fields appended at the end of a struct (an older side's
//! value arrives with the field's default; an older side skips it), and variants
//! added to an open enum (one with a `#[tomada(other)]` variant, which is what an
//! older side reads them as). Anything else — a method, field or variant removed,
//! renamed, reordered or retyped, a field inserted, a variant added to a closed enum —
//! is refused, with the difference spelled out ([`Difference`]). `docs/evolution.md`
//! has the rules; [`classify`] says what a change does, for `tomada diff`.
//!
//! The code is split by job: static descriptions (`desc`), the const encoder
//! (`encode`), the owned model and its `Display` (`model`), the fit check (`fit`), the
//! decoder of hostile bytes (`decode`) and the classifier (`classify`); all public
//! items are re-exported here.

mod classify;
mod decode;
mod desc;
mod encode;
mod fit;
mod model;

pub use classify::{Compat, MemberChange, classify, evolved_keys, verdict};
pub(crate) use decode::Reader;
pub use desc::*;
pub use encode::{MAX_NAMED, fingerprint, has_objects, minor};
pub(crate) use encode::{contract_len, put, put_str, put_u32, str_eq, str_len, write_contract};
pub use fit::*;
pub use model::*;

#[cfg(test)]
mod tests {
    use super::encode::tag;
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
        let why: Vec<String> = host.fit(&plugin).unwrap_err().iter().map(ToString::to_string).collect();
        assert_eq!(
            why,
            [
                "method `put` changed: argument 1 `Entry`, field `tags` is `Vec<u64>` in the plugin, `Vec<String>` in the host",
                "method `put` changed: argument 1 `Entry`, field `kind` `Kind`: variant `Link` is only in the plugin: the enum is closed, so a side that does not know the variant cannot read it; adding a variant is a new major version, or give the enum a `#[tomada(other)]` unit variant in the next major and add variants with `#[tomada(since = N)]` from then on",
                "method `names` changed: the result is `HashMap<String, (u8, [u16; 3])>` in the plugin, `HashMap<String, (u8, [u16; 2])>` in the host",
            ]
        );
    }

    #[test]
    fn the_prefix_rule() {
        let newer = Interface::from(&<dyn v1::Api as Contract>::DESCRIPTION);
        let mut older = newer.clone();
        older.methods.pop();
        // Without `later` and still minor 1, it is no older build: `later` was removed.
        let diverged = older.clone();
        older.minor = 0;
        assert_eq!(newer.fit(&older), Ok(Fit { provided: 2, by_bytes: false }));
        assert_eq!(older.fit(&newer), Ok(Fit { provided: 2, by_bytes: false }));
        for why in [newer.fit(&diverged).unwrap_err(), diverged.fit(&newer).unwrap_err()] {
            assert_eq!(why.len(), 1, "{why:?}");
            assert!(
                why[0].to_string().contains(
                    "it was added in minor 1, and the other side is built against minor 1, which has it: it was removed"
                ),
                "{why:?}"
            );
        }
        let mut unmarked = newer.clone();
        unmarked.methods[2].since = 0;
        let why = older.fit(&unmarked).unwrap_err();
        assert!(why[0].to_string().contains("`later` is only in the plugin"), "{why:?}");
    }
}
