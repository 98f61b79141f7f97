//! Builds the example's plugin and runs the example's host on it, as a reader would.

#![allow(missing_docs)]

use std::process::Command;

use tomada_test_support::Build;

#[test]
fn the_same_calls_in_three_places() {
    let plugin = Build::new("three-modes-plugin").cdylib();
    let out = Command::new(env!("CARGO_BIN_EXE_three-modes-host")).arg(&plugin).output().expect("run the host");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    print!("{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    // One block per mode: its heading, then the same answers.
    let blocks: Vec<&[&str]> = lines.split(|l| !l.starts_with("  ")).skip(1).collect();
    let headings: Vec<&str> = lines.iter().copied().filter(|l| !l.starts_with("  ")).collect();
    assert!(headings[0].starts_with("in this process"), "{stdout}");
    assert!(headings[1].starts_with("in a child process"), "{stdout}");
    assert!(headings[2].starts_with("on a server"), "{stdout}");
    assert_eq!(headings.len(), 3, "{stdout}");
    for (i, block) in blocks.iter().enumerate() {
        assert_eq!(block[0], format!("  runs in this process: {}", i == 0), "{stdout}");
        assert_eq!(block[1], "  count: the=4, cat=2, dog=2", "{stdout}");
        assert_eq!(block[2], "  each: 11 words sent, 11 called back", "{stdout}");
        assert!(block[3].starts_with("  a call takes about "), "{stdout}");
    }
    assert_eq!(blocks[0].len(), 4, "{stdout}");
    if cfg!(target_os = "linux") {
        for block in &blocks[1..] {
            assert!(block[4].starts_with("  crash: an error, the host goes on: "), "{stdout}");
            assert_eq!(block[5], "  after the crash, count: 1", "{stdout}");
        }
    }
}
