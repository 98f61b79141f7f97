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
    // `Basket::by_id` is keyed by `u64`, which does not evolve.
    assert!(!text.contains("warn:"), "{text}");
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

/// What the new build lacks is classified too: in an older build (its minor version
/// below the member's) by the same rules as an addition seen from the other side; in
/// a build of a minor version that had it, as the load check sees it, a removal that
/// breaks.
#[test]
fn members_the_new_build_lacks_are_classified() {
    // 1.1 -> 1.0: `note`, `Shipped`, `count` and `describe` are 1.1's. The methods
    // have default bodies, which 1.1 hosts run for 1.0 plugins.
    let (code, text) = diff("shop-1-1", "shop-1-0");
    assert_eq!(code, Some(0), "{text}");
    for line in [
        ": compatible both ways",
        "- method `count`: not in the new, a minor-0 build (it was appended in minor 1 with a default body): hosts built against the old run its default body for plugins built against the new (compatible both ways)",
        "- method `describe`: not in the new, a minor-0 build (it was appended in minor 1 with a default body)",
        "- struct `Order`: field `note` (appended in minor 1) not in the new, a minor-0 build: values from builds of the new arrive at builds of the old with its default, and builds of the new skip it (compatible both ways)",
        "- enum `State`: variant `Shipped` (added in minor 1) not in the new, a minor-0 build: builds of the new read it as `Unknown` (compatible both ways)",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    assert!(!text.contains("NotProvided"), "{text}");
    // 1.2 -> 1.1: `audit` has no default body: 1.2 hosts get `NotProvided` from 1.1
    // plugins.
    let (code, text) = diff("shop-1-2", "shop-1-1");
    assert_eq!(code, Some(3), "{text}");
    assert!(
        text.contains("- method `audit`: not in the new, a minor-1 build (it was appended in minor 2 without a default body): hosts built against the old get `CallError::NotProvided` from plugins built against the new (newer reads older)"),
        "{text}"
    );
    assert!(
        text.contains("- struct `Order`: field `priority` (appended in minor 2) not in the new, a minor-1 build"),
        "{text}"
    );
    // Removed from a 1.1 build (it keeps 1.1's `count`): breaking, either way round,
    // member by member, as hosts of 1.1 refuse it at load.
    for (old, new) in [("shop-1-1", "shop-1-1-removed"), ("shop-1-1-removed", "shop-1-1")] {
        let (code, text) = diff(old, new);
        assert_eq!(code, Some(1), "{old} -> {new}: {text}");
        assert!(!text.contains("compatible"), "{old} -> {new}: {text}");
        let has = cdylib("shop-1-1").display().to_string();
        for member in ["method `describe` is only in", "field `note` is only in", "variant `Shipped` is only in"] {
            assert!(
                text.contains(&format!("{member} {has}: it was added in minor 1")),
                "{old} -> {new}: {member}\n{text}"
            );
        }
        assert!(
            text.contains("it was added in minor 1, and the other side is built against minor 1, which has it: it was removed, so two different contracts claim one version; removing a field needs a new ABI number (docs/evolution.md)"),
            "{old} -> {new}: {text}"
        );
    }
    // 1.0 has none of them: it fits the diverged build, which differs from it as 1.1 does.
    let (code, text) = diff("shop-1-0", "shop-1-1-removed");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("- method `count`: appended in minor 1 with a default body"), "{text}");
}

#[test]
fn inspect_lists_every_major_a_library_serves() {
    let out = Command::new(env!("CARGO_BIN_EXE_tomada")).arg("inspect").arg(cdylib("shop-majors")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("contract    shop::Shop 1.2 (ABI 1,"), "{text}");
    assert!(text.contains("contract    shop::Shop 2.2 (ABI 2,"), "{text}");
}
