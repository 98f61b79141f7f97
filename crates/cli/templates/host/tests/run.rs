//! Builds the plugin, then runs the host on it in both modes and loads it from a test
//! through `tomada_host`, as any host would.

use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use @crate@_contract::{GreetError, Greeter};

/// The plugin, built once per test run into this workspace's target directory.
fn plugin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            // `CARGO_TARGET_TMPDIR` is `<target directory>/tmp`.
            let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--quiet", "--target-dir"])
                .arg(target)
                .args(["-p", "@name@-plugin"])
                .status()
                .expect("run cargo");
            assert!(status.success(), "cargo could not build the plugin");
            let file = format!("{DLL_PREFIX}@crate@_plugin{DLL_SUFFIX}");
            target.join("debug").join(file)
        })
        .clone()
}

/// The host's output on the plugin, with `args` before the plugin's path.
fn host(args: &[&str]) -> String {
    let mut host = Command::new(env!("CARGO_BIN_EXE_@name@-host"));
    let out = host.args(args).arg(plugin()).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// What the host prints, whichever process the plugin runs in.
fn check(out: &str, place: &str) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    let loaded = format!("loaded @name@-plugin 0.1.0 {place}");
    assert_eq!(lines[0], loaded);
    assert_eq!(lines[1], "Olá, Mundo!");
    assert_eq!(lines[2], "refused: the name is empty");
    assert_eq!(lines[3], "Olá mais tarde, async!");
    let panicked = "the plugin panicked: cannot greet \"panic\"";
    assert!(lines[4].starts_with(panicked), "{}", lines[4]);
    assert_eq!(lines[5], "Olá, de novo!");
}

#[test]
fn the_host_calls_the_plugin_in_its_own_process() {
    check(&host(&[]), "in this process");
}

#[cfg(unix)]
#[test]
fn the_host_calls_the_plugin_in_a_child_process() {
    check(&host(&["--isolate"]), "in a child process");
}

#[test]
fn a_test_loads_the_plugin_as_a_host_does() {
    let greeter = tomada_host::load::<dyn Greeter>(plugin()).expect("the plugin loads");
    assert_eq!(greeter.info().name, "@name@-plugin");
    assert_eq!(greeter.greet("teste"), Ok(Ok("Olá, teste!".to_owned())));
    assert_eq!(greeter.greet(""), Ok(Err(GreetError::EmptyName)));
}
