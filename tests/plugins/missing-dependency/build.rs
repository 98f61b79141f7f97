//! Builds `libtomada_gone.so` into OUT_DIR and links the plugin against it. At run
//! time nothing tells the dynamic loader to look in OUT_DIR, so the plugin passes
//! inspection (its manifest is fine) and then `dlopen` refuses it.
use std::process::Command;

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let src = format!("{out}/gone.c");
    std::fs::write(&src, "int tomada_gone(void) { return 7; }\n").expect("write gone.c");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(cc)
        .args(["-shared", "-fPIC", "-o"])
        .arg(format!("{out}/libtomada_gone.so"))
        .arg(&src)
        .status()
        .expect("this fixture needs a C compiler (`cc`)");
    assert!(status.success(), "cc failed");
    println!("cargo:rustc-link-search=native={out}");
    println!("cargo:rustc-link-lib=dylib=tomada_gone");
}
