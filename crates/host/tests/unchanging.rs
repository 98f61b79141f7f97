//! Files that cannot change (Linux): an immutable file (`chattr +i`) is loaded and
//! checked as itself, without the sealed copy, and still refused when bad; an
//! ordinary file still gets the copy.
//!
//! Setting the immutable flag needs `CAP_LINUX_IMMUTABLE` (root) and a file system
//! that has the flag (ext4, xfs, btrfs, tmpfs since Linux 6.0). Where either is
//! missing (a developer's clone, not as root) these tests say so and check nothing,
//! as the other privileged tests do, unless `TOMADA_REQUIRE_IMMUTABLE` is set: then
//! they fail. `.ci/run` sets it, so CI always runs them.
#![cfg(target_os = "linux")]

use std::fs;
use std::path::{Path, PathBuf};

use pluginapi::Greeter;
use tomada_host::{LoadError, Loader};
use tomada_test_support::{cdylib, copy_to, mapped_copies, set_immutable};

/// A file made immutable, and made mutable again on drop (an immutable file cannot
/// be deleted: its directory, and the target directory, could not be removed).
struct Immutable(PathBuf);

impl Immutable {
    /// Makes `path` immutable; `None` if this environment cannot and says so.
    fn set(path: &Path) -> Option<Immutable> {
        match set_immutable(path, true) {
            Ok(()) => Some(Immutable(path.to_path_buf())),
            Err(e) if std::env::var_os("TOMADA_REQUIRE_IMMUTABLE").is_some() => panic!(
                "cannot make {} immutable: {e} (needs CAP_LINUX_IMMUTABLE and a file system with the flag; \
                 TOMADA_REQUIRE_IMMUTABLE says this environment can)",
                path.display()
            ),
            Err(e) => {
                eprintln!(
                    "skipped: cannot make {} immutable ({e}): needs root (CAP_LINUX_IMMUTABLE) and a file system \
                     with the flag",
                    path.display()
                );
                None
            }
        }
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        if let Err(e) = set_immutable(&self.0, false) {
            eprintln!("could not make {} mutable again: {e} (run `chattr -i` on it)", self.0.display());
        }
    }
}

/// A directory on the disk the tests are built on (under target/), where the flag
/// can be set even if /tmp is a file system without it.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// Whether `/proc/self/maps` maps `path` itself.
fn maps_file(path: &Path) -> bool {
    let wanted = fs::canonicalize(path).unwrap();
    let maps = fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines().any(|l| l.split_whitespace().nth(5).is_some_and(|p| Path::new(p) == wanted))
}

#[test]
fn an_immutable_plugin_loads_without_a_copy() {
    let dir = scratch();
    let path = copy_to(&cdylib("greeter"), dir.path(), "unchanging-greeter.so");
    let Some(_flag) = Immutable::set(&path) else { return };
    let inspected = Loader::new().inspect(&path).unwrap();
    assert!(!inspected.sealed_copy(), "an immutable file was copied");
    let plugin = inspected.check::<dyn Greeter>().unwrap().load().unwrap();
    assert_eq!(plugin.greet("imutável").unwrap(), "Olá, imutável 👋");
    assert_eq!(mapped_copies("unchanging-greeter.so"), 0, "a sealed copy is mapped");
    assert!(maps_file(&path), "the file itself is not what is mapped");
    // Loaded twice at once, then dropped in either order.
    let again = tomada_host::load::<dyn Greeter>(&path).unwrap();
    drop(plugin);
    assert_eq!(again.greet("de novo").unwrap(), "Olá, de novo 👋");
}

/// An isolated plugin's process gets the file's own descriptor (no copy to hand it)
/// and loads it as itself too.
#[test]
fn an_immutable_plugin_loads_isolated() {
    let dir = scratch();
    let path = copy_to(&cdylib("greeter"), dir.path(), "unchanging-isolated.so");
    let Some(_flag) = Immutable::set(&path) else { return };
    let mode = tomada_host::isolate::Mode::Isolated(crate::isolate::isolation());
    let plugin = tomada_host::load_with::<dyn Greeter>(&path, &mode).unwrap();
    assert_eq!(plugin.greet("longe").unwrap(), "Olá, longe 👋");
    let pid = plugin.process_id().expect("an isolated plugin has a process");
    // The plugin's process, or (in a PID namespace of its own) its descendants.
    let maps = family_maps(pid);
    assert!(!maps.contains("/memfd:tomada:unchanging-isolated.so"), "the plugin's process mapped a copy");
    assert!(maps.contains("unchanging-isolated.so"), "the plugin's process did not map the file:\n{maps}");
}

/// The `/proc/<pid>/maps` of `pid` and of all its descendants, one after the other.
fn family_maps(pid: u32) -> String {
    let mut maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
        maps.push_str(&family_maps(child));
    }
    maps
}

#[test]
fn an_immutable_bad_file_is_still_refused() {
    let dir = scratch();
    let bytes = fs::read(cdylib("greeter")).unwrap();
    let cut = dir.path().join("unchanging-cut.so");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let Some(_cut_flag) = Immutable::set(&cut) else { return };
    let err = tomada_host::load::<dyn Greeter>(&cut).unwrap_err();
    assert!(matches!(err, LoadError::Damaged { .. }), "{err:?}");

    let foreign = copy_to(&cdylib("no-descriptor"), dir.path(), "unchanging-foreign.so");
    let Some(_foreign_flag) = Immutable::set(&foreign) else { return };
    let err = tomada_host::load::<dyn Greeter>(&foreign).unwrap_err();
    assert!(matches!(err, LoadError::NoDescriptor { .. }), "{err:?}");
}

#[test]
fn an_ordinary_plugin_still_gets_the_sealed_copy() {
    let dir = scratch();
    let path = copy_to(&cdylib("greeter"), dir.path(), "ordinary-greeter.so");
    let inspected = Loader::new().inspect(&path).unwrap();
    assert!(inspected.sealed_copy(), "an ordinary file was not copied");
    let plugin = inspected.check::<dyn Greeter>().unwrap().load().unwrap();
    assert_eq!(plugin.greet("x").unwrap(), "Olá, x 👋");
    assert_eq!(mapped_copies("ordinary-greeter.so"), 1, "no sealed copy is mapped");
    assert!(!maps_file(&path), "the file itself is mapped");
}
