//! Benchmark-only: `kv_api::Entry` as an abi_stable 0.11 user writes it. Users of
//! abi_stable build values of these types directly (`RString`, `RVec`); the benchmark
//! does the same, so the comparison includes building the value on the caller's side.

#![allow(missing_docs)]

use abi_stable::StableAbi;
use abi_stable::std_types::{RBox, ROption, RString, RVec};

#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RKind {
    Text,
    Blob,
    Link,
}

#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct RMeta {
    pub kind: RKind,
    pub created: u64,
    pub owner: ROption<RString>,
}

#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct REntry {
    pub key: RString,
    pub value: RVec<u8>,
    pub meta: RMeta,
    pub tags: RVec<RString>,
    pub previous: ROption<RBox<REntry>>,
}

/// The plugin's `echo`, exported as `bench_abi_stable_echo`.
pub type EchoFn = extern "C" fn(RVec<REntry>) -> RVec<REntry>;
