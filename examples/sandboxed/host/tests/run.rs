//! Builds the example's plugin and runs the example's host on it, as a reader would.

#![allow(missing_docs)]

use std::process::Command;

use tomada_test_support::Build;

#[test]
fn faults_are_errors_and_the_sandbox_refuses_reads() {
    let plugin = Build::new("sandboxed-plugin").cdylib();
    let out = Command::new(env!("CARGO_BIN_EXE_sandboxed-host")).arg(&plugin).output().expect("run the host");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    print!("{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "host: the plugin runs in another process: true");
    assert_eq!(lines[1], "render \"fish & chips\": <p>fish &amp; chips</p>");
    assert!(lines[2].starts_with("render \"\" failed: the plugin panicked: cannot render empty text"), "{}", lines[2]);
    assert_eq!(lines[3], "render \"still alive\": <p>still alive</p>");
    assert!(lines[4].starts_with("render \"\\0\" failed: the plugin's process crashed: "), "{}", lines[4]);
    assert!(lines[4].contains("SIGABRT"), "{}", lines[4]);
    assert_eq!(lines[5], "render \"back again\": <p>back again</p>");
    assert_eq!(lines[6], "render_file note.txt: <p>granted &lt;3</p>");
    assert!(
        lines[7].starts_with("render_file /etc/passwd: refused: cannot read /etc/passwd: Permission denied"),
        "{}",
        lines[7]
    );
    assert_eq!(lines[8], "host: host can read /etc/passwd itself: true");
    assert_eq!(lines[9], "host: done");
    assert_eq!(lines.len(), 10, "{stdout}");
}
