//! The attacker names `/etc` and `/` in its own `DT_RUNPATH` (issue 16, item 4): a
//! sandbox that granted reads on the plugin's run path would let it read
//! `/etc/shadow`. (The dynamic loader never searches them: the plugin's only
//! dependencies, libc and libgcc_s, are loaded already.)
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-cdylib=-Wl,--enable-new-dtags,-rpath,/etc:/");
    }
}
