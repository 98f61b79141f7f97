//! Nothing incompatible runs code in the host: libraries whose initialisers leave
//! a trace (a marker file) are refused, and the marker is never created. Each load
//! runs in a child process (this test binary re-executed, go-plugin style) so the
//! marker path can be handed over in the environment, and a raw `dlopen` of the
//! same file is the control that shows the initialiser does run when opened.

use std::path::{Path, PathBuf};
use std::process::Command;

use tomada_test_support::cdylib;

const MODE: &str = "TOMADA_MARKER_MODE";
const LIBRARY: &str = "TOMADA_MARKER_LIBRARY";

/// The child side: loads `LIBRARY` as `MODE` says and prints the outcome. Not a test
/// of its own: ignored unless the parent runs it with its environment set.
#[test]
#[ignore = "helper process of the marker tests"]
fn marker_child() {
    let (Some(mode), Some(library)) = (std::env::var_os(MODE), std::env::var_os(LIBRARY)) else { return };
    match mode.to_str() {
        Some("tomada") => match tomada_host::load::<dyn pluginapi::Greeter>(PathBuf::from(library)) {
            Ok(_) => println!("outcome: loaded"),
            Err(e) => {
                // The message and its causes, as the host CLI prints them.
                let mut line = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    line = format!("{line}: {cause}");
                    source = cause.source();
                }
                println!("outcome: refused: {line}");
            }
        },
        Some("greet") => match tomada_host::load::<dyn pluginapi::Greeter>(PathBuf::from(library)) {
            Ok(p) => println!("outcome: greeted {:?}", p.greet("x").map_err(|e| e.to_string())),
            Err(e) => println!("outcome: refused: {e}"),
        },
        Some("race") => {
            // Swaps the plugin's path between a tomada plugin and a foreign library
            // (rename(2), atomic) while loading it, over and over.
            // At least 2000 loads, and on until the race has shown both files and
            // many swaps: how the two threads interleave is the scheduler's to say,
            // so the test waits for a real race instead of hoping for one.
            use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
            let path = PathBuf::from(library);
            let dir = path.parent().unwrap().to_path_buf();
            let (stop, swapped) = (std::sync::Arc::new(AtomicBool::new(false)), std::sync::Arc::new(AtomicU64::new(0)));
            let swapper = {
                let (stop, swapped, path) = (stop.clone(), swapped.clone(), path.clone());
                std::thread::spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let source = if i.is_multiple_of(2) { "plugin.src" } else { "foreign.src" };
                        let tmp = dir.join(format!("tmp{i}"));
                        std::fs::hard_link(dir.join(source), &tmp).unwrap();
                        std::fs::rename(&tmp, &path).unwrap();
                        i += 1;
                        swapped.store(i, Ordering::Relaxed);
                    }
                    i
                })
            };
            let (mut loaded, mut refused) = (0u64, 0u64);
            let raced = |loaded: u64, refused: u64| {
                loaded + refused >= 2000 && loaded > 0 && refused > 0 && swapped.load(Ordering::Relaxed) > 100
            };
            // (A hang guard only: a million loads is hours of an idle machine's time.)
            while !raced(loaded, refused) && loaded + refused < 1_000_000 {
                match tomada_host::load::<dyn pluginapi::Greeter>(&path) {
                    Ok(p) => {
                        assert_eq!(p.greet("x").unwrap(), "Olá, x 👋");
                        loaded += 1
                    }
                    Err(_) => refused += 1,
                }
            }
            stop.store(true, Ordering::Relaxed);
            let swaps = swapper.join().unwrap();
            println!("outcome: race loaded {loaded} refused {refused} swaps {swaps}");
        }
        Some("raw") => {
            // SAFETY: the control case: we *want* the initialiser to run, in this
            // throwaway child process.
            let lib = unsafe { libloading::Library::new(library) };
            println!("outcome: raw dlopen {}", if lib.is_ok() { "ok" } else { "failed" });
        }
        other => panic!("unknown mode {other:?}"),
    }
}

/// Runs the child; returns its stdout and whether the marker exists afterwards.
/// The child gets no `LD_LIBRARY_PATH` (cargo sets one for tests, with every
/// workspace build script's link paths in it).
pub fn in_child(mode: &str, library: &Path) -> (String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("initialiser-ran");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "marker::marker_child", "--nocapture", "--test-threads=1"])
        .env_remove("LD_LIBRARY_PATH")
        .env(MODE, mode)
        .env(LIBRARY, library)
        .env("TOMADA_MARKER", &marker)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let outcome = stdout
        .lines()
        .find_map(|l| l.split_once("outcome: ").map(|(_, o)| o))
        .unwrap_or_else(|| panic!("no outcome: {stdout}"));
    (outcome.to_owned(), marker.exists())
}

/// A C shared library whose constructor creates `$TOMADA_MARKER`, built with `cc`.
pub fn c_library_with_constructor(dir: &Path) -> PathBuf {
    let src = dir.join("ctor.c");
    std::fs::write(
        &src,
        r#"
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void leave_a_trace(void) {
    const char *path = getenv("TOMADA_MARKER");
    if (path) { FILE *f = fopen(path, "w"); if (f) { fputs("C constructor ran\n", f); fclose(f); } }
}
int some_function(void) { return 42; }
"#,
    )
    .unwrap();
    let lib = dir.join("libctor.so");
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let status = Command::new(cc)
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .expect("this test needs a C compiler (`cc`)");
    assert!(status.success(), "cc failed");
    lib
}

#[test]
fn a_foreign_c_library_is_refused_before_its_constructor_runs() {
    let dir = tempfile::tempdir().unwrap();
    let lib = c_library_with_constructor(dir.path());

    let (outcome, ran) = in_child("raw", &lib);
    assert_eq!(outcome, "raw dlopen ok");
    assert!(ran, "control: a raw dlopen runs the constructor, so the marker works");

    let (outcome, ran) = in_child("tomada", &lib);
    assert!(outcome.starts_with("refused: ") && outcome.contains("not a tomada plugin"), "{outcome}");
    assert!(!ran, "tomada let the C constructor run");
}

#[test]
fn a_plugin_for_another_abi_is_refused_before_its_initialiser_runs() {
    let lib = cdylib("wrong-abi");

    let (outcome, ran) = in_child("raw", &lib);
    assert_eq!(outcome, "raw dlopen ok");
    assert!(ran, "control: a raw dlopen runs the .init_array entry, so the marker works");

    let (outcome, ran) = in_child("tomada", &lib);
    assert!(outcome.starts_with("refused: ") && outcome.contains("ABI 2, this host speaks ABI 1"), "{outcome}");
    assert!(!ran, "tomada let the plugin's initialiser run");
}
