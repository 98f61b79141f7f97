//! The `tomada` command on real fixture plugins and the real host executable.

#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tomada_test_support::{cdylib, workspace_root};

fn tomada(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tomada")).args(args).output().expect("run tomada")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The seed's host executable, built by cargo for the fixtures.
fn host_exe() -> PathBuf {
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(workspace_root())
        .args(["build", "--quiet", "-p", "host", "--target-dir"])
        .arg(workspace_root().join("target/fixtures"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    workspace_root().join("target/fixtures/debug").join(format!("host{}", std::env::consts::EXE_SUFFIX))
}

#[test]
fn inspect_a_plugin() {
    let path = cdylib("greeter");
    let out = tomada(&["inspect".as_ref(), path.as_os_str()]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    for needle in [
        "plugin      greeter 1.0.0",
        "description Plugin de exemplo que dá oi",
        "contract    pluginapi::Greeter 1.0 (ABI 1, fingerprint ",
        "fn greet(&self, &str) -> String",
        "boundary    tomada boundary 1",
        "panics      unwind",
        "built by    rustc ",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
}

#[test]
fn inspect_json_for_machines() {
    let path = cdylib("evolve-1-1");
    let out = tomada(&["inspect".as_ref(), "--json".as_ref(), path.as_os_str()]);
    assert!(out.status.success(), "{out:?}");
    let docs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let doc = &docs[0];
    assert_eq!(doc["kind"], "plugin");
    assert_eq!(doc["name"], "evolve-1-1");
    assert_eq!(doc["contract"]["name"], "evolve::Api");
    assert_eq!(doc["contract"]["version"], "1.1");
    assert_eq!(doc["contract"]["abi"], 1);
    assert_eq!(doc["contract"]["methods"][2]["name"], "farewell");
    assert_eq!(doc["contract"]["methods"][2]["since"], 1);
    assert_eq!(doc["boundary"], 1);
    assert_eq!(doc["panic"], "unwind");
    assert!(doc["rustc"].as_str().unwrap().starts_with("rustc "));
    assert_eq!(doc["contract"]["fingerprint"].as_str().unwrap().len(), 16);
}

#[test]
fn inspect_a_host_executable() {
    let out = tomada(&["inspect".as_ref(), host_exe().as_os_str()]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("a host executable"), "{text}");
    assert!(text.contains("expects     pluginapi::Greeter 1.0"), "{text}");
}

#[test]
fn inspect_bad_files_reports_each_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello\n").unwrap();
    let good = cdylib("greeter");
    let out = tomada(&["inspect".as_ref(), text.as_os_str(), good.as_os_str(), "/nonexistent.so".as_ref()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("notes.txt` is not a shared library: it is a text file"), "{err}");
    assert!(err.contains("/nonexistent.so` does not exist"), "{err}");
    // The good file in between is still inspected.
    assert!(stdout(&out).contains("plugin      greeter 1.0.0"));

    let out = tomada(&["inspect".as_ref(), "--json".as_ref(), text.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let docs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(docs[0]["error"].as_str().unwrap().contains("text file"));
}

fn diff(a: &Path, b: &Path) -> Output {
    tomada(&["diff".as_ref(), a.as_os_str(), b.as_os_str()])
}

#[test]
fn diff_plugin_and_host() {
    let host = host_exe();
    let out = diff(&cdylib("greeter"), &host);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "fit: pluginapi::Greeter 1.0 fits pluginapi::Greeter 1.0\n");

    let out = diff(&host, &cdylib("changed-layout"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stdout(&out).contains("- method `greet` changed: argument 1 is `String` in the plugin, `&str` in the host"),
        "{}",
        stdout(&out)
    );

    let out = diff(&cdylib("wrong-abi"), &host);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("ABI 2 in the plugin, ABI 1 in the host"), "{}", stdout(&out));

    let out = diff(&cdylib("allround"), &host);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("the plugin implements `allround_api::Allround`, the host expects `pluginapi::Greeter`")
    );
}

#[test]
fn diff_two_plugins() {
    let out = diff(&cdylib("evolve-1-0"), &cdylib("evolve-1-1"));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout(&out).contains("compatible, differing only by methods added in a minor version"),
        "{}",
        stdout(&out)
    );

    let broken = cdylib("evolve-1-1-broken");
    let out = diff(&cdylib("evolve-1-0"), &broken);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("method `count` changed: argument 1 is `Vec<u8>` in "), "{text}");
    assert!(text.contains(&broken.display().to_string()), "{text}");
}

#[test]
fn diff_unreadable_file_is_exit_2() {
    let out = diff(Path::new("/nonexistent.so"), &cdylib("greeter"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: cannot read /nonexistent.so: "));
}

/// A file name with control characters is escaped in text output and exact in JSON.
#[test]
fn inspect_escapes_control_characters_in_text_not_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let evil = dir.path().join("evil\x1b[2J\r.so");
    std::fs::copy(cdylib("greeter"), &evil).unwrap();
    let out = tomada(&["inspect".as_ref(), evil.as_os_str()]);
    let text = stdout(&out);
    assert!(text.contains("evil\\e[2J\\r.so") && !text.contains('\x1b') && !text.contains('\r'), "{text:?}");
    let out = tomada(&["inspect".as_ref(), "--json".as_ref(), evil.as_os_str()]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let path = json.pointer("/0/path").or_else(|| json.pointer("/path")).and_then(|p| p.as_str()).unwrap();
    assert!(path.ends_with("evil\x1b[2J\r.so"), "{path:?}");
}
