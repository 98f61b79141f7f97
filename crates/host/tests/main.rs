//! Integration tests of tomada-host: real fixture plugins, built by cargo from
//! `tests/plugins/*`, loaded and called; every refusal produced by a real file.

#![allow(missing_docs)]

mod asyncs;
mod compiler;
mod conformance;
mod contract_only;
mod damage;
#[cfg(unix)]
mod errors;
#[cfg(any(unix, windows))]
mod everywhere;
mod evolve;
#[cfg(unix)]
mod family;
#[cfg(unix)]
mod isolate;
mod load;
#[cfg(unix)]
mod loader;
mod marker;
mod objects;
#[cfg(target_os = "linux")]
mod sandbox;
mod threads;
mod trust;
mod unchanging;
