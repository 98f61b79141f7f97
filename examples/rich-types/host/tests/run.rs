//! Builds the example's plugin and runs the example's host on it, as a reader would.

#![allow(missing_docs)]

use std::process::Command;

use tomada_test_support::Build;

#[test]
fn the_host_prints_what_the_plugin_answers() {
    let plugin = Build::new("rich-types-plugin").cdylib();
    let out = Command::new(env!("CARGO_BIN_EXE_rich-types-host")).arg(&plugin).output().expect("run the host");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout,
        "loaded rich-types-plugin 1.0.0\n\
         find Tagged(\"gift\"): mug, e-book\n\
         find PriceBetween { min: 1000, max: 3000 }: kettle, e-book\n\
         get mug: mug (8.00, 10 left, tags: kitchen+gift)\n\
         get sofa: None\n\
         order 2 mug + 1 kettle: Ok(4100)\n\
         order 5 lamp: refused, only 1 left\n\
         order 1 sofa: Err(Unknown(\"sofa\"))\n\
         get kettle: kettle (25.00, 2 left, tags: kitchen)\n\
         tags: digital=1 gift=2 home=1 kitchen=2\n\
         cheapest: mug; dearest: lamp\n"
    );
}

#[test]
fn a_file_that_is_not_a_plugin_is_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("libbogus.so");
    std::fs::write(&bogus, b"not a library").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rich-types-host")).arg(&bogus).output().expect("run the host");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: ") && stderr.contains("libbogus.so"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
