//! The `host` binary, run as a user would: the demo's exact output, and one clear
//! line on stderr with a non-zero exit for every bad input, each a real file.

#![allow(missing_docs)]

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use tomada_test_support::{cdylib, copy_to};

fn host(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host")).args(args).output().expect("run host")
}

fn run_plugin(path: &Path) -> Output {
    host(&["--plugin".as_ref(), path.as_os_str()])
}

/// `YYYY/MM/DD HH:MM:SS ` — Go's `log` prefix.
fn strip_log_prefix(line: &str) -> &str {
    let (stamp, rest) = line.split_at_checked(20).unwrap_or_else(|| panic!("no log prefix: {line:?}"));
    let shape: String = stamp.chars().map(|c| if c.is_ascii_digit() { '9' } else { c }).collect();
    assert_eq!(shape, "9999/99/99 99:99:99 ", "not a log prefix: {line:?}");
    rest
}

/// Exit 1, nothing on stdout, exactly one log line on stderr that says `needle`.
fn assert_refused(out: &Output, needle: &str) -> String {
    assert_fails_after(out, 0, needle)
}

/// As [`assert_refused`], after `before` other log lines (the "loaded" line).
fn assert_fails_after(out: &Output, before: usize, needle: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "exit status {:?}; stderr: {stderr}", out.status);
    assert!(out.stdout.is_empty(), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), before + 1, "not one error line: {stderr}");
    let message = strip_log_prefix(lines[before]);
    assert!(message.starts_with("error: "), "{message}");
    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    for noise in ["panicked at", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(!message.contains(noise), "{message}");
    }
    message.to_owned()
}

#[test]
fn the_demo_prints_the_two_lines() {
    let out = run_plugin(&cdylib("greeter"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "Olá, Mundo 👋\n");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        strip_log_prefix(stderr.trim_end_matches('\n')),
        "Plugin carregado: greeter v1.0.0 (ABI=1) — Plugin de exemplo que dá oi"
    );
}

#[test]
fn name_is_configurable() {
    let plugin = cdylib("greeter");
    let out = host(&["--plugin".as_ref(), plugin.as_os_str(), "--name".as_ref(), "Ana".as_ref()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "Olá, Ana 👋\n");
}

#[test]
fn help_and_usage_errors() {
    let out = host(&["--help".as_ref()]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("--plugin <PATH>") && help.contains("--name <NAME>"), "{help}");
    let out = host(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--plugin <PATH>"));
}

#[test]
fn nonexistent_path() {
    assert_refused(&run_plugin(Path::new("bin/nao_existe.so")), "does not exist");
}

#[test]
fn directory() {
    let dir = tempfile::tempdir().unwrap();
    assert_refused(&run_plugin(dir.path()), "is not a regular file");
}

#[cfg(unix)]
#[test]
fn device() {
    assert_refused(&run_plugin(Path::new("/dev/null")), "`/dev/null` is not a regular file");
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.so");
    fs::write(&path, b"").unwrap();
    assert_refused(&run_plugin(&path), "the file is empty");
}

#[test]
fn text_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("readme.so");
    fs::write(&path, "# not a plugin\n").unwrap();
    assert_refused(&run_plugin(&path), "it is a text file");
}

#[test]
fn truncated_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = fs::read(cdylib("greeter")).unwrap();
    let path = dir.path().join("half.so");
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(&run_plugin(&path), "is damaged");
}

#[test]
fn foreign_library() {
    let libm = tomada_test_support::system_libm();
    assert_refused(&run_plugin(&libm), "not a tomada plugin");
}

#[test]
fn library_without_descriptor() {
    assert_refused(&run_plugin(&cdylib("no-descriptor")), "not a tomada plugin");
}

#[test]
fn plugin_built_for_abi_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_to(&cdylib("wrong-abi"), dir.path(), "greeter_v2.so");
    let message = assert_refused(&run_plugin(&path), "was built for pluginapi::Greeter ABI 2, this host speaks ABI 1");
    assert!(message.contains("greeter_v2.so"), "{message}");
}

#[test]
fn plugin_built_against_a_changed_contract() {
    assert_refused(
        &run_plugin(&cdylib("changed-layout")),
        "method `greet` changed: argument 1 is `String` in the plugin, `&str` in the host",
    );
}

#[test]
fn plugin_that_panics_in_greet() {
    // It loads (and says so), then its greet panics: the host reports and exits.
    let out = run_plugin(&cdylib("panics-in-greet"));
    let message = assert_fails_after(&out, 1, "the plugin panicked: não quero cumprimentar Mundo");
    assert!(message.contains("plugin `panics-in-greet` failed to greet"), "{message}");
    assert!(message.contains("(at tests/plugins/panics-in-greet/src/lib.rs:"), "{message}");
}

#[test]
fn plugin_that_panics_while_loading() {
    assert_refused(&run_plugin(&cdylib("panics-in-new")), "panicked while making its instance: configuração ausente");
}

#[test]
fn plugin_of_another_contract() {
    assert_refused(&run_plugin(&cdylib("allround")), "implements contract `allround_api::Allround`");
}

// Symlinks are part of what it checks.
#[cfg(unix)]
#[test]
fn plugin_dir_loads_every_good_plugin_and_reports_every_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_to(&cdylib("greeter"), d, "a_greeter.so");
    copy_to(&cdylib("wrong-abi"), d, "b_wrong_abi.so");
    fs::write(d.join("c_notes.so"), "not a library\n").unwrap();
    copy_to(&cdylib("panics-in-greet"), d, "d_grumpy.so");
    std::os::unix::fs::symlink(d.join("a_greeter.so"), d.join("e_link.so")).unwrap();
    std::os::unix::fs::symlink(d.join("missing.so"), d.join("f_dangling.so")).unwrap();
    copy_to(&cdylib("greeter"), d, "g_greeter_copy.so");
    // Skipped without a word: hidden files, other suffixes, directories.
    copy_to(&cdylib("greeter"), d, ".hidden.so");
    fs::write(d.join("README.txt"), "plugins go here\n").unwrap();
    fs::create_dir(d.join("h_subdir.so")).unwrap();

    let out = host(&["--plugin-dir".as_ref(), d.as_os_str(), "--name".as_ref(), "Dir".as_ref()]);
    assert_eq!(out.status.code(), Some(1), "a refused file makes the exit status 1: {out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "Olá, Dir 👋\nOlá, Dir 👋\n");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().map(strip_log_prefix).collect();
    let expected_starts = [
        "Plugin carregado: greeter v1.0.0 (ABI=1)",
        "error: `",
        "error: `",
        "Plugin carregado: panics-in-greet v0.1.0 (ABI=1)",
        "error: plugin `panics-in-greet` failed to greet",
        "skipped `",
        "error: `",
        "Plugin carregado: greeter v1.0.0 (ABI=1)",
    ];
    assert_eq!(lines.len(), expected_starts.len(), "{stderr}");
    for (line, start) in lines.iter().zip(expected_starts) {
        assert!(line.starts_with(start), "{line:?} should start with {start:?}\n{stderr}");
    }
    assert!(lines[1].contains("b_wrong_abi.so` was built for pluginapi::Greeter ABI 2"), "{}", lines[1]);
    assert!(lines[2].contains("c_notes.so` is not a shared library: it is a text file"), "{}", lines[2]);
    assert!(
        lines[5].contains("e_link.so`: the same library as `") && lines[5].contains("a_greeter.so"),
        "{}",
        lines[5]
    );
    assert!(lines[6].contains("f_dangling.so` does not exist"), "{}", lines[6]);
    assert!(!stderr.contains(".hidden") && !stderr.contains("README") && !stderr.contains("h_subdir"), "{stderr}");
}

#[test]
fn plugin_dir_of_good_plugins_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    copy_to(&cdylib("greeter"), dir.path(), "greeter_v1.so");
    let out = host(&["--plugin-dir".as_ref(), dir.path().as_os_str()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "Olá, Mundo 👋\n");
}

#[test]
fn plugin_dir_without_plugins() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("README.txt"), "nothing\n").unwrap();
    assert_refused(&host(&["--plugin-dir".as_ref(), dir.path().as_os_str()]), "no plugin (`*.so`) in");
    assert_refused(&host(&["--plugin-dir".as_ref(), "/nonexistent-dir".as_ref()]), "cannot read plugin directory");
}

#[test]
fn the_demo_isolated_prints_the_same_two_lines() {
    let plugin = cdylib("greeter");
    let out = host(&["--plugin".as_ref(), plugin.as_os_str(), "--isolate".as_ref()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "Olá, Mundo 👋\n");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        strip_log_prefix(stderr.trim_end_matches('\n')),
        "Plugin carregado: greeter v1.0.0 (ABI=1) — Plugin de exemplo que dá oi"
    );
}

#[cfg(unix)]
#[test]
fn an_aborting_plugin_kills_the_host_in_process_but_not_isolated() {
    use std::os::unix::process::ExitStatusExt;
    let plugin = cdylib("aborts-in-greet");
    // In-process there is nothing to catch: abort() ends the host with it.
    let out = run_plugin(&plugin);
    assert_eq!(out.status.signal(), Some(6), "{out:?}");
    // Isolated, the host reports it and exits normally.
    let out = host(&["--plugin".as_ref(), plugin.as_os_str(), "--isolate".as_ref()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().map(strip_log_prefix).collect();
    assert!(lines[0].starts_with("Plugin carregado: aborts-in-greet"), "{stderr}");
    // The plugin's last words are forwarded by a thread of the host, the error is
    // printed by its main thread: which of the two writes first is not defined.
    let mut after = lines[1..].to_vec();
    after.sort_by_key(|l| l.starts_with("error: "));
    assert_eq!(after.len(), 2, "{stderr}");
    assert_eq!(after[0], "[aborts-in-greet] about to abort while greeting Mundo", "{stderr}");
    assert!(
        after[1].starts_with("error: plugin `aborts-in-greet` failed to greet: the plugin's process crashed: the process was killed by signal 6"),
        "{stderr}"
    );
}

#[test]
fn trusted_keys_turn_the_policy_on() {
    let dir = tempfile::tempdir().unwrap();
    let (sk, pk) = (dir.path().join("m.key"), dir.path().join("m.pub"));
    let status = Command::new("minisign")
        .args(["-G", "-W", "-p"])
        .arg(&pk)
        .arg("-s")
        .arg(&sk)
        .status()
        .expect("this test needs the `minisign` tool (apt-get install minisign)");
    assert!(status.success());
    let signed = copy_to(&cdylib("greeter"), dir.path(), "signed.so");
    let status = Command::new("minisign").arg("-S").arg("-s").arg(&sk).arg("-m").arg(&signed).status().unwrap();
    assert!(status.success());
    let unsigned = copy_to(&cdylib("greeter"), dir.path(), "unsigned.so");

    let with_key =
        |plugin: &Path| host(&["--trusted-key".as_ref(), pk.as_os_str(), "--plugin".as_ref(), plugin.as_os_str()]);
    let out = with_key(&signed);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Olá, Mundo 👋");
    assert_refused(&with_key(&unsigned), "unsigned.so` is not signed");
    // Without a key, the same unsigned file loads: checks are not authentication.
    assert!(run_plugin(&unsigned).status.success());
    assert_refused(
        &host(&["--trusted-key".as_ref(), "/nonexistent.pub".as_ref(), "--plugin".as_ref(), signed.as_os_str()]),
        "cannot read public key `/nonexistent.pub`",
    );
}

/// Control characters in what a plugin or a file controls are escaped: the
/// greeting (it echoes the name), error messages naming a path, plugin output.
#[test]
fn control_characters_are_escaped_in_every_line() {
    let plugin = cdylib("greeter");
    for isolate in [false, true] {
        let mut args = vec![plugin.as_os_str(), "--name".as_ref(), "Ana\x1b[2J\rforged".as_ref()];
        if isolate {
            args.push("--isolate".as_ref());
        }
        let mut full = vec!["--plugin".as_ref()];
        full.extend(args);
        let out = host(&full);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "Olá, Ana\\e[2J\\rforged 👋\n");
    }
    let out = run_plugin(Path::new("/nonexistent/\x1b]0;title\x07plugin.so"));
    let message = assert_refused(&out, "\\e]0;title\\u{7}plugin.so");
    assert!(!message.contains('\x1b') && !message.contains('\x07'), "{message:?}");
}

/// A library exporting several greeters (and a store): each greeter greets, in
/// both modes; the store is not a greeter and is left alone.
#[test]
fn plugin_dir_greets_with_every_greeter_a_library_exports() {
    let dir = tempfile::tempdir().unwrap();
    copy_to(&cdylib("family"), dir.path(), "a_family.so");
    copy_to(&cdylib("greeter"), dir.path(), "b_greeter.so");
    for isolate in [false, true] {
        let mut args = vec!["--plugin-dir".as_ref(), dir.path().as_os_str(), "--name".as_ref(), "Dir".as_ref()];
        if isolate {
            args.push("--isolate".as_ref());
        }
        let out = host(&args);
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{stdout}");
        assert_eq!(lines[0], "Olá, Dir");
        assert!(lines[1].starts_with("Hola, Dir (pid "), "{stdout}");
        assert_eq!(lines[2], "Olá, Dir 👋");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let loaded: Vec<&str> = stderr.lines().map(strip_log_prefix).collect();
        assert!(loaded[0].starts_with("Plugin carregado: hello v0.3.0 (ABI=1) — says olá"), "{stderr}");
        assert!(loaded[1].starts_with("Plugin carregado: hola v1.1.0 (ABI=1)"), "{stderr}");
        assert!(!stderr.contains("memory"), "{stderr}");
    }
    // One file by itself: the same.
    let out = run_plugin(&dir.path().join("a_family.so"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2);
}
