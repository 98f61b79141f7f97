//! Records the version of the rustc that builds this crate, so a plugin's
//! descriptor can say which compiler built it (`tomada::RUSTC_VERSION`).
use std::process::Command;

fn main() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "rustc (unknown version)".to_owned());
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=TOMADA_RUSTC_VERSION={version}");
    println!("cargo:rustc-env=TOMADA_TARGET={target}");
    println!("cargo:rerun-if-env-changed=RUSTC");
}
