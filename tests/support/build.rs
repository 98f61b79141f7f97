//! Records the target the tests are built for, so fixtures are built for it too.

fn main() {
    for var in ["TARGET", "HOST"] {
        let value = std::env::var(var).unwrap_or_default();
        println!("cargo:rustc-env=TOMADA_SUPPORT_{var}={value}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
