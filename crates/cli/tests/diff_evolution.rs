//! `tomada diff OLD NEW` as a CI gate: it classifies each pair of the evolution
//! matrix's plugins (tests/plugins/shop-*, see crates/host/tests/evolve.rs) as the
//! matrix finds them, member by member, with an exit code per class: 0 compatible both
//! ways, 3 newer reads older, 1 breaking, 2 unreadable.

#![allow(missing_docs)]

use std::process::Command;

use tomada_test_support::cdylib;

fn diff(old: &str, new: &str) -> (Option<i32>, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_tomada")).arg("diff").arg(cdylib(old)).arg(cdylib(new)).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn each_pair_of_the_matrix_is_classified_as_the_matrix_finds_it() {
    // 1.0 -> 1.1: a field, a variant of an open enum, methods with default bodies.
    let (code, text) = diff("shop-1-0", "shop-1-1");
    assert_eq!(code, Some(0), "{text}");
    for line in [
        ": compatible both ways",
        "- method `count`: appended in minor 1 with a default body, which hosts run for older plugins (compatible both ways)",
        "- struct `Order`: field `note` appended in minor 1",
        "- enum `State`: variant `Shipped` added in minor 1: it arrives at older sides as `Unknown` (compatible both ways)",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    // 1.1 -> 1.2 adds `audit` without a body: older plugins answer `NotProvided`.
    let (code, text) = diff("shop-1-1", "shop-1-2");
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("- method `audit`: appended in minor 2 without a default body"), "{text}");
    assert!(text.contains("(newer reads older)"), "{text}");
    // The same pair the other way round is classified the same (both load either way).
    let (code, _) = diff("shop-1-2", "shop-1-0");
    assert_eq!(code, Some(3));
    // Breaking: a new major, a field appended without `since`, a variant added to a
    // closed enum.
    for (new, says) in [
        ("shop-2-0", "a major version apart"),
        ("shop-1-1-unmarked", "field `note` is only in"),
        ("shop-1-1-closed", "variant `Platinum` is only in"),
    ] {
        let (code, text) = diff("shop-1-0", new);
        assert_eq!(code, Some(1), "{new}: {text}");
        assert!(text.contains(says), "{new}: {text}");
    }
    // Unchanged.
    let (code, text) = diff("shop-1-2", "shop-1-2");
    assert_eq!(code, Some(0), "{text}");
}

#[test]
fn inspect_lists_every_major_a_library_serves() {
    let out = Command::new(env!("CARGO_BIN_EXE_tomada")).arg("inspect").arg(cdylib("shop-majors")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("contract    shop::Shop 1.2 (ABI 1,"), "{text}");
    assert!(text.contains("contract    shop::Shop 2.2 (ABI 2,"), "{text}");
}
