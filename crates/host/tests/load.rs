//! Loading: the greeter works, and every bad file gets its own error.

use std::fs;
use std::path::{Path, PathBuf};

use pluginapi::Greeter;
use tomada_host::{CallError, Damage, Flaw, LoadError, NotLibrary, Plugin};
use tomada_test_support::{Build, cdylib, copy_to, find};

fn load(path: &Path) -> Result<Plugin<dyn Greeter>, LoadError> {
    tomada_host::load::<dyn Greeter>(path)
}

fn refusal(path: &Path) -> LoadError {
    match load(path) {
        Ok(p) => panic!("{} loaded but should have been refused: {p:?}", path.display()),
        Err(e) => e,
    }
}

/// The message names the file and says what was found.
fn assert_message(err: &LoadError, path: &Path, needles: &[&str]) {
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "message does not name the file: {text}");
    for n in needles {
        assert!(text.contains(n), "message lacks {n:?}: {text}");
    }
}

#[test]
fn greeter_loads_and_greets() {
    let path = cdylib("greeter");
    let plugin = load(&path).unwrap();
    assert_eq!(plugin.info().name, "greeter");
    assert_eq!(plugin.info().version, "1.0.0");
    assert_eq!(plugin.info().description, "Plugin de exemplo que dá oi");
    assert_eq!(plugin.manifest().contract.abi, pluginapi::ABI);
    assert_eq!(plugin.manifest().contract.name, "pluginapi::Greeter");
    assert_eq!(plugin.manifest().contract.methods[0].to_string(), "fn greet(&self, &str) -> String");
    assert_eq!(plugin.manifest().rustc, tomada_host::tomada::RUSTC_VERSION);
    assert_eq!(plugin.path(), path);
    assert_eq!(plugin.greet("Mundo").unwrap(), "Olá, Mundo 👋");
    assert_eq!(plugin.greet("").unwrap(), "Olá,  👋");
}

#[test]
fn a_plugin_can_be_dropped_and_loaded_again() {
    let path = cdylib("greeter");
    for round in 0..3 {
        let plugin = load(&path).unwrap();
        assert_eq!(plugin.greet(&format!("round {round}")).unwrap(), format!("Olá, round {round} 👋"));
        drop(plugin);
    }
    // Two handles to the same library at once, dropped in either order.
    let a = load(&path).unwrap();
    let b = load(&path).unwrap();
    drop(a);
    assert_eq!(b.greet("b").unwrap(), "Olá, b 👋");
}

/// A plugin's library that stays loaded after the plugin is dropped (here: another
/// handle holds it, opened by the very name the loader knows it by) keeps its loader
/// name, `/proc/<pid>/fd/N` (`N` its sealed copy), to itself: the plugin loaded next
/// must be the next file, not the old library found again by that name (glibc
/// matches names before it opens anything).
/// The name the loader knows the library of `path` by: `/proc/<pid>/fd/N`, `N` the
/// descriptor of its sealed copy (named after the file), or the path itself.
fn loader_name(path: &Path) -> PathBuf {
    let sealed = format!("/memfd:tomada:{}", path.file_name().unwrap().to_string_lossy());
    let Ok(fds) = fs::read_dir("/proc/self/fd") else { return path.to_path_buf() };
    for fd in fds.flatten() {
        if fs::read_link(fd.path()).is_ok_and(|target| target.to_string_lossy().starts_with(&sealed)) {
            return PathBuf::from(format!("/proc/{}/fd/{}", std::process::id(), fd.file_name().to_string_lossy()));
        }
    }
    path.to_path_buf()
}

#[test]
fn a_library_still_loaded_keeps_its_name_from_the_next_plugin() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..5 {
        let first = copy_to(&cdylib("greeter"), dir.path(), &format!("first{round}.so"));
        let plugin = load(&first).unwrap();
        // SAFETY: the greeter's initialisers are tomada's; this handle only holds it.
        let other_handle = unsafe { libloading::Library::new(loader_name(&first)) }.unwrap();
        drop(plugin);
        let next = load(&cdylib("panics-in-greet")).unwrap();
        assert!(matches!(next.greet("x"), Err(CallError::Panicked { .. })), "round {round}: the greeter answered");
        drop(next);
        drop(other_handle);
    }
}

#[test]
fn nonexistent_path() {
    let path = PathBuf::from("/nonexistent/greeter_v1.so");
    let err = refusal(&path);
    assert!(matches!(err, LoadError::NotFound { .. }), "{err:?}");
    assert_message(&err, &path, &["does not exist"]);
}

#[test]
fn directory() {
    let dir = tempfile::tempdir().unwrap();
    let err = refusal(dir.path());
    assert!(matches!(err, LoadError::NotAFile { .. }), "{err:?}");
    assert_message(&err, dir.path(), &["not a regular file"]);
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.so");
    fs::write(&path, b"").unwrap();
    let err = refusal(&path);
    assert!(matches!(err, LoadError::NotALibrary { reason: NotLibrary::Empty, .. }), "{err:?}");
    assert_message(&err, &path, &["not a shared library", "empty"]);
}

#[test]
fn text_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.so");
    fs::write(&path, "isto não é uma biblioteca\n").unwrap();
    let err = refusal(&path);
    assert!(matches!(err, LoadError::NotALibrary { reason: NotLibrary::Text, .. }), "{err:?}");
    assert_message(&err, &path, &["not a shared library", "text file"]);
}

#[test]
fn binary_junk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.so");
    fs::write(&path, (0..=255u8).cycle().take(4096).collect::<Vec<_>>()).unwrap();
    let err = refusal(&path);
    assert!(matches!(err, LoadError::NotALibrary { reason: NotLibrary::UnknownFormat, .. }), "{err:?}");
    assert_message(&err, &path, &["not an ELF, Mach-O or PE file"]);
}

#[test]
#[cfg_attr(
    windows,
    ignore = "a PE file cut by its last byte loses only its COFF string table, which the loader does not read"
)]
fn truncated_copies_of_the_greeter() {
    let bytes = fs::read(cdylib("greeter")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Cut in the headers, in the middle, and just before the end.
    for len in [10, 100, bytes.len() / 2, bytes.len() - 1] {
        let path = dir.path().join(format!("greeter_{len}.so"));
        fs::write(&path, &bytes[..len]).unwrap();
        let err = refusal(&path);
        assert!(matches!(err, LoadError::Damaged { .. }), "cut at {len}: {err:?}");
        assert_message(&err, &path, &["damaged"]);
    }
}

#[test]
fn foreign_shared_library() {
    let libm = tomada_test_support::system_libm();
    let err = refusal(&libm);
    assert!(matches!(err, LoadError::NoDescriptor { .. }), "{err:?}");
    assert_message(&err, &libm, &["not a tomada plugin"]);
}

#[test]
fn rust_library_without_descriptor() {
    let path = cdylib("no-descriptor");
    let err = refusal(&path);
    assert!(matches!(err, LoadError::NoDescriptor { .. }), "{err:?}");
    assert_message(&err, &path, &["not a tomada plugin", "tomada::export!"]);
}

#[test]
fn an_executable_is_not_a_plugin() {
    let exe = std::env::current_exe().unwrap();
    let err = refusal(&exe);
    // A PIE executable is an ELF shared object; either way it is refused unopened.
    assert!(matches!(err, LoadError::NotALibrary { .. } | LoadError::NoDescriptor { .. }), "{err:?}");
}

#[test]
fn wrong_abi() {
    let path = cdylib("wrong-abi");
    let err = refusal(&path);
    assert!(matches!(err, LoadError::AbiMismatch { expected: 1, found: 2, .. }), "{err:?}");
    assert_message(&err, &path, &["pluginapi::Greeter ABI 2", "this host speaks ABI 1", "rebuild"]);
}

#[test]
fn changed_layout_with_the_same_abi() {
    let path = cdylib("changed-layout");
    let err = refusal(&path);
    let LoadError::LayoutMismatch { differences, .. } = &err else { panic!("{err:?}") };
    let printed: Vec<String> = differences.iter().map(ToString::to_string).collect();
    assert_eq!(printed, ["method `greet` changed: argument 1 is `String` in the plugin, `&str` in the host"]);
    assert_eq!(differences[0].method, "greet", "the member that changed, typed");
    assert_message(
        &err,
        &path,
        &[
            "implements pluginapi::Greeter 1.0, which does not fit this host's pluginapi::Greeter 1.0",
            "argument 1 is `String`",
        ],
    );
}

#[test]
fn another_contract() {
    let path = cdylib("allround");
    let err = refusal(&path);
    assert!(matches!(&err, LoadError::ContractMismatch { found, .. } if found == "allround_api::Allround"), "{err:?}");
    assert_message(&err, &path, &["implements contract `allround_api::Allround`", "expects `pluginapi::Greeter`"]);
}

#[test]
fn a_panicking_constructor() {
    let path = cdylib("panics-in-new");
    let err = refusal(&path);
    assert!(
        matches!(&err, LoadError::InitPanicked { message, .. } if message.starts_with("configuração ausente")),
        "{err:?}"
    );
    assert_message(&err, &path, &["panicked while making its instance"]);
}

#[test]
fn a_manifest_without_the_exported_descriptor() {
    let path = cdylib("manifest-only");
    let err = refusal(&path);
    assert!(matches!(err, LoadError::MissingSymbol { .. }), "{err:?}");
    assert_message(&err, &path, &["TOMADA_DESCRIPTOR"]);
}

#[test]
fn a_plugin_built_with_panic_abort() {
    let path = Build::new("greeter").config("profile.dev.panic=\"abort\"").cdylib();
    let err = refusal(&path);
    assert!(matches!(err, LoadError::PanicAbort { .. }), "{err:?}");
    assert_message(&err, &path, &["panic = \"abort\"", "panic = \"unwind\""]);
}

/// A copy of the greeter with its manifest's bytes at `offset` (from the magic)
/// replaced.
fn patched_greeter(dir: &Path, name: &str, offset: usize, bytes: &[u8]) -> PathBuf {
    let path = copy_to(&cdylib("greeter"), dir, name);
    let mut data = fs::read(&path).unwrap();
    let at = find(&data, &tomada_host::tomada::descriptor::MAGIC).expect("the greeter has a manifest");
    data[at + offset..at + offset + bytes.len()].copy_from_slice(bytes);
    fs::write(&path, data).unwrap();
    path
}

#[test]
#[cfg_attr(
    windows,
    ignore = "patches the first magic bytes in the file, which in a PE file are the descriptor's, not the manifest's"
)]
fn another_boundary_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = patched_greeter(dir.path(), "future.so", 8, &99u32.to_le_bytes());
    let err = refusal(&path);
    assert!(matches!(err, LoadError::BoundaryMismatch { expected: 3, found: 99, .. }), "{err:?}");
    assert_message(&err, &path, &["boundary version 99 (an unknown tomada release)", "speaks version 3 (tomada 0.3)"]);
    // A plugin of tomada 0.1's boundary: the message says which release to rebuild with.
    let path = patched_greeter(dir.path(), "old.so", 8, &1u32.to_le_bytes());
    let err = refusal(&path);
    assert!(matches!(err, LoadError::BoundaryMismatch { expected: 3, found: 1, .. }), "{err:?}");
    assert_message(&err, &path, &["boundary version 1 (tomada 0.1)", "rebuild the plugin with tomada 0.3"]);
}

#[test]
#[cfg_attr(
    windows,
    ignore = "patches the first magic bytes in the file, which in a PE file are the descriptor's, not the manifest's"
)]
fn bad_magic() {
    let dir = tempfile::tempdir().unwrap();
    let path = patched_greeter(dir.path(), "magic.so", 1, b"XXXXXX");
    let err = refusal(&path);
    assert!(matches!(err, LoadError::BadMagic { .. }), "{err:?}");
    assert_message(&err, &path, &["magic bytes"]);
}

#[test]
#[cfg_attr(
    windows,
    ignore = "patches the first magic bytes in the file, which in a PE file are the descriptor's, not the manifest's"
)]
fn damaged_manifest() {
    let dir = tempfile::tempdir().unwrap();
    // The declared length grows past the section's end.
    let path = patched_greeter(dir.path(), "long.so", 12, &60_000u32.to_le_bytes());
    let err = refusal(&path);
    assert!(matches!(err, LoadError::Damaged { .. }), "{err:?}");
    assert_message(&err, &path, &["damaged", "length"]);
}

#[test]
#[cfg_attr(windows, ignore = "patches an ELF header")]
fn another_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_to(&cdylib("greeter"), dir.path(), "arm.so");
    let mut data = fs::read(&path).unwrap();
    // ELF e_machine (offset 18): EM_AARCH64 = 183, or EM_X86_64 = 62 when we are on arm.
    let other: u16 = if cfg!(target_arch = "aarch64") { 62 } else { 183 };
    data[18..20].copy_from_slice(&other.to_le_bytes());
    fs::write(&path, data).unwrap();
    let err = refusal(&path);
    assert!(matches!(err, LoadError::WrongArchitecture { .. }), "{err:?}");
    assert_message(&err, &path, &["was built for"]);
}

#[test]
fn a_panic_in_greet_is_an_error_and_the_plugin_survives() {
    let path = cdylib("panics-in-greet");
    let plugin = load(&path).unwrap();
    for _ in 0..3 {
        let err = plugin.greet("Mundo").unwrap_err();
        let CallError::Panicked { message } = &err else { panic!("{err:?}") };
        assert!(message.starts_with("não quero cumprimentar Mundo (at "), "{message}");
        assert!(message.contains("panics-in-greet/src/lib.rs:"), "{message}");
    }
}

#[test]
fn inspect_reads_without_loading() {
    let path = cdylib("greeter");
    let inspection = tomada_host::inspect(&path).unwrap();
    assert_eq!(inspection.manifest.info.name, "greeter");
    assert_eq!(inspection.manifest.boundary, tomada_host::tomada::BOUNDARY_VERSION);
    assert_eq!(inspection.manifest.target, tomada_host::tomada::TARGET);
    tomada_host::check::<dyn Greeter>(&inspection).unwrap();
    assert!(matches!(
        tomada_host::check::<dyn allround_api::Allround>(&inspection),
        Err(LoadError::ContractMismatch { .. })
    ));
}

#[test]
#[cfg_attr(windows, ignore = "the descriptor is checked against the manifest from ELF relocations only")]
fn a_descriptor_that_contradicts_the_file_is_refused_before_loading() {
    let path = cdylib("descriptor-mismatch");
    // The exported descriptor points at another manifest than the `.tomada` section:
    // found from the file's relocations, before the loader runs anything.
    let err = tomada_host::inspect(&path).unwrap_err();
    assert!(matches!(&err, LoadError::Damaged { reason: Damage::Structure(Flaw::DescriptorElsewhere), .. }), "{err:?}");
    assert_message(&err, &path, &["damaged", "does not point at its .tomada section"]);
    let err = refusal(&path);
    assert!(matches!(err, LoadError::Damaged { .. }), "{err:?}");
}

#[test]
fn a_library_the_dynamic_loader_refuses() {
    let path = cdylib("missing-dependency");
    // The file itself is a fine plugin...
    tomada_host::check::<dyn Greeter>(&tomada_host::inspect(&path).unwrap()).unwrap();
    // ...that needs a library the loader cannot find. Loaded in a child process
    // without cargo's `LD_LIBRARY_PATH`, which would find it in the build directory.
    let (outcome, _) = super::marker::in_child("tomada", &path);
    assert!(outcome.starts_with("refused: "), "{outcome}");
    assert!(outcome.contains("the dynamic loader could not open"), "{outcome}");
    assert!(outcome.contains("libtomada_gone.so: cannot open shared object file"), "{outcome}");
}
