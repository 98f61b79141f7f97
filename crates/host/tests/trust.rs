//! What was checked is what runs: one open file (rename and FIFO races, bare names),
//! checks of what the loader will use (a copied section, another platform), and the
//! trust policy (signatures, pins, versions, permissions) with its audit trail. Every
//! refusal comes from a real file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pluginapi::Greeter;
use tomada_host::{LoadError, Loader, TrustPolicy};
use tomada_test_support::{cdylib, copy_to};

use super::marker::{c_library_with_constructor, in_child};

fn greeter_copy(dir: &Path, name: &str) -> PathBuf {
    copy_to(&cdylib("greeter"), dir, name)
}

#[test]
fn a_renamed_path_never_runs_a_foreign_constructor() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = c_library_with_constructor(dir.path());
    std::fs::rename(&foreign, dir.path().join("foreign.src")).unwrap();
    std::fs::copy(cdylib("greeter"), dir.path().join("plugin.src")).unwrap();
    let path = dir.path().join("plugin.so");
    std::fs::hard_link(dir.path().join("plugin.src"), &path).unwrap();
    let (outcome, ran) = in_child("race", &path);
    assert!(!ran, "a foreign constructor ran during the rename race: {outcome}");
    let numbers: Vec<u64> = outcome.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    let [loaded, refused, swaps] = numbers[..] else { panic!("{outcome}") };
    assert!(loaded + refused >= 2000, "{outcome}");
    // The race was real (the child loads on until it is): both files were seen, and
    // the path changed often.
    assert!(loaded > 0 && refused > 0 && swaps > 100, "{outcome}");
}

/// Runs `f` on a thread; fails the test if it does not finish within `limit`.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f()).unwrap());
    rx.recv_timeout(limit).expect("hung: did not finish in time")
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("plugin.so");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `mkfifo` takes a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let err = within(tomada_test_support::HANG_GUARD, move || tomada_host::load::<dyn Greeter>(&fifo).unwrap_err());
    assert!(matches!(err, LoadError::NotAFile { .. }), "{err:?}");
}

#[cfg(unix)]
#[test]
fn a_fifo_swapped_in_during_loads_never_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = greeter_copy(dir.path(), "plugin.src");
    let fifo = dir.path().join("fifo.src");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let path = dir.path().join("plugin.so");
    std::fs::hard_link(&plugin, &path).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, dir, path) = (stop.clone(), dir.path().to_path_buf(), path.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let tmp = dir.join(format!("tmp{i}"));
                if i.is_multiple_of(2) {
                    std::fs::hard_link(dir.join("plugin.src"), &tmp).unwrap();
                } else {
                    std::fs::hard_link(dir.join("fifo.src"), &tmp).unwrap();
                }
                std::fs::rename(&tmp, &path).unwrap();
                i += 1;
            }
        })
    };
    // At least 300 loads, and on until the race has hit both files: when the swapper
    // runs is the scheduler's to say. (A hang guard bounds it.)
    let (loaded, fifos) = within(Duration::from_secs(600), move || {
        let (mut loaded, mut fifos) = (0, 0);
        while loaded + fifos < 300 || loaded == 0 || fifos == 0 {
            match tomada_host::load::<dyn Greeter>(&path) {
                Ok(_) => loaded += 1,
                Err(LoadError::NotAFile { .. }) => fifos += 1,
                Err(e) => panic!("{e}"),
            }
        }
        (loaded, fifos)
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(loaded + fifos >= 300);
    assert!(fifos > 0 && loaded > 0, "the race never hit both files");
}

#[test]
fn a_bare_name_loads_the_file_in_the_current_directory_never_a_system_library() {
    // A plugin called like a system library: the loader must not search for it.
    let dir = tempfile::tempdir().unwrap();
    greeter_copy(dir.path(), "libz.so.1");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "marker::marker_child", "--nocapture", "--test-threads=1"])
        .current_dir(dir.path())
        .env("TOMADA_MARKER_MODE", "tomada")
        .env("TOMADA_MARKER_LIBRARY", "libz.so.1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("outcome: loaded"), "{stdout}");
    // And a bare name that is not there is not found, though the system has one.
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "marker::marker_child", "--nocapture", "--test-threads=1"])
        .current_dir(empty.path())
        .env("TOMADA_MARKER_MODE", "tomada")
        .env("TOMADA_MARKER_LIBRARY", "libc.so.6")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("outcome: refused: `libc.so.6` does not exist"), "{stdout}");
}

#[test]
fn a_foreign_library_with_a_copied_tomada_section_is_refused_before_its_constructor() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = c_library_with_constructor(dir.path());
    let section = dir.path().join("tomada.bin");
    let status = Command::new("objcopy")
        .args(["-O", "binary", "--only-section=.tomada"])
        .arg(cdylib("greeter"))
        .arg(&section)
        .status()
        .expect("this test needs objcopy (binutils)");
    assert!(status.success());
    let forged = dir.path().join("libforged.so");
    let status = Command::new("objcopy")
        .arg(format!("--add-section=.tomada={}", section.display()))
        .args(["--set-section-flags", ".tomada=alloc,readonly,data"])
        .arg(&foreign)
        .arg(&forged)
        .status()
        .unwrap();
    assert!(status.success());
    // It carries the greeter's manifest but exports no descriptor: refused from the
    // file, and nothing ran.
    let err = tomada_host::inspect(&forged).unwrap_err();
    assert!(matches!(err, LoadError::MissingSymbol { .. }), "{err:?}");
    let (outcome, ran) = in_child("tomada", &forged);
    assert!(outcome.contains("does not export"), "{outcome}");
    assert!(!ran, "the forged library's constructor ran");
}

#[test]
fn a_library_for_another_platform_is_refused() {
    use object::write::{Object, StandardSegment};
    let dir = tempfile::tempdir().unwrap();
    let manifest = std::fs::read(cdylib("greeter")).unwrap();
    let greeter = tomada_host::inspect(cdylib("greeter")).unwrap();
    let _ = manifest;
    for format in [object::BinaryFormat::MachO, object::BinaryFormat::Coff] {
        let mut obj = Object::new(format, object::Architecture::X86_64, object::Endianness::Little);
        let segment = obj.segment_name(StandardSegment::Data).to_vec();
        let name = if format == object::BinaryFormat::MachO { "__tomada" } else { ".tomada" };
        let id = obj.add_section(segment, name.as_bytes().to_vec(), object::SectionKind::ReadOnlyData);
        obj.append_section_data(id, &greeter.manifest_bytes, 1);
        let path = dir.path().join(format!("{format:?}.plugin"));
        std::fs::write(&path, obj.write().unwrap()).unwrap();
        let err = tomada_host::load::<dyn Greeter>(&path).unwrap_err();
        assert!(matches!(err, LoadError::WrongPlatform { .. }), "{format:?}: {err:?}");
        assert!(err.to_string().contains("this host needs Elf (linux)"), "{err}");
    }
}

#[test]
fn a_huge_declared_section_is_refused_without_allocating_it() {
    // The `.tomada` header claims the rest of a 10 GB sparse file.
    let dir = tempfile::tempdir().unwrap();
    let path = greeter_copy(dir.path(), "huge.so");
    let bytes = std::fs::read(&path).unwrap();
    let file = object::read::elf::ElfFile64::<object::Endianness>::parse(&*bytes).unwrap();
    use object::{Object, ObjectSection};
    let section = file.section_by_name(".tomada").unwrap();
    let index = section.index().0;
    let shoff = u64::from_le_bytes(bytes[0x28..0x30].try_into().unwrap()) as usize;
    let size_at = shoff + index * 64 + 32;
    let mut bytes = bytes.clone();
    bytes[size_at..size_at + 8].copy_from_slice(&(10u64 << 30).to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(10 << 30).unwrap();
    let err = within(tomada_test_support::HANG_GUARD, move || tomada_host::inspect(&path).unwrap_err());
    assert!(err.to_string().contains("more than the 1048576 a manifest may have"), "{err}");
}

// ---- trust policy ----

struct Keys {
    public: PathBuf,
    secret: minisign::SecretKey,
}

fn keypair(dir: &Path, name: &str) -> Keys {
    let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
    let public = dir.join(format!("{name}.pub"));
    std::fs::write(&public, pair.pk.to_box().unwrap().to_string()).unwrap();
    Keys { public, secret: pair.sk }
}

fn sign(keys: &Keys, file: &Path) {
    let sig = minisign::sign(None, &keys.secret, std::fs::File::open(file).unwrap(), None, None).unwrap();
    let mut name = file.as_os_str().to_owned();
    name.push(".minisig");
    std::fs::write(PathBuf::from(name), sig.to_string()).unwrap();
}

fn policy_with(keys: &Keys) -> TrustPolicy {
    TrustPolicy::new().trust_key_file(&keys.public).unwrap()
}

fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_owned()
}

#[test]
fn a_signed_plugin_loads_under_a_policy_trusting_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keypair(dir.path(), "release");
    let plugin = greeter_copy(dir.path(), "greeter.so");
    sign(&keys, &plugin);
    let inspected = Loader::with_policy(policy_with(&keys)).inspect(&plugin).unwrap();
    assert!(inspected.signed_by().is_some_and(|k| k.len() == 16));
    let p = inspected.check::<dyn Greeter>().unwrap().load().unwrap();
    assert_eq!(p.greet("Mundo").unwrap(), "Olá, Mundo 👋");
}

/// A signature is over every byte of the file: under a policy the sealed copy is
/// whole even when the loader leaves debug info out (the test-built greeter has
/// megabytes of it), so the digest is the file's, and a pinned digest matches.
#[test]
fn a_policy_hashes_the_whole_file_even_without_debug_info_in_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keypair(dir.path(), "release");
    let plugin = greeter_copy(dir.path(), "greeter.so");
    sign(&keys, &plugin);
    let inspected = Loader::with_policy(policy_with(&keys)).debug_info(false).inspect(&plugin).unwrap();
    assert!(inspected.signed_by().is_some());
    let p = inspected.check::<dyn Greeter>().unwrap().load().unwrap();
    assert_eq!(p.greet("Mundo").unwrap(), "Olá, Mundo 👋");
    let pinned = TrustPolicy::new().pin("greeter", &sha256_of(&plugin)).unwrap().strict_modes(false);
    let inspected = Loader::with_policy(pinned).debug_info(false).inspect(&plugin).unwrap();
    assert_eq!(
        inspected.sha256().map(|d| d.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        Some(sha256_of(&plugin))
    );
}

#[test]
fn refusals_under_a_policy_name_the_file_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keypair(dir.path(), "release");
    let stranger = keypair(dir.path(), "stranger");
    let loader = Loader::with_policy(policy_with(&keys));
    let load = |p: &Path| loader.load::<dyn Greeter>(p).unwrap_err();

    let unsigned = greeter_copy(dir.path(), "unsigned.so");
    let err = load(&unsigned);
    assert!(matches!(err, LoadError::Unsigned { .. }), "{err:?}");
    assert!(err.to_string().contains("unsigned.so` is not signed"), "{err}");

    let tampered = greeter_copy(dir.path(), "tampered.so");
    sign(&keys, &tampered);
    let mut bytes = std::fs::read(&tampered).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1; // in the symbol string table: still a fine library
    std::fs::write(&tampered, bytes).unwrap();
    let err = load(&tampered);
    assert!(matches!(err, LoadError::BadSignature { .. }), "{err:?}");
    assert!(err.to_string().contains("tampered.so` has a bad signature"), "{err}");

    let foreign = greeter_copy(dir.path(), "foreign.so");
    sign(&stranger, &foreign);
    let err = load(&foreign);
    assert!(matches!(err, LoadError::UnknownKey { .. }), "{err:?}");
    assert!(err.to_string().contains("which this host does not trust"), "{err}");

    let old = greeter_copy(dir.path(), "old.so");
    sign(&keys, &old);
    let strict = Loader::with_policy(policy_with(&keys).min_version("greeter", "1.2.0").unwrap());
    let err = strict.load::<dyn Greeter>(&old).unwrap_err();
    assert!(matches!(err, LoadError::VersionTooOld { .. }), "{err:?}");
    assert!(err.to_string().contains("is greeter 1.0.0, older than the minimum 1.2.0"), "{err}");
}

#[test]
fn pinned_digests_like_a_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = greeter_copy(dir.path(), "greeter.so");
    let digest = sha256_of(&plugin);
    let lock = format!("# plugins.lock\ngreeter {digest}\n");
    let policy = TrustPolicy::new().pins_from_lock(&lock).unwrap();
    let inspected = Loader::with_policy(policy).inspect(&plugin).unwrap();
    assert_eq!(
        inspected.sha256().map(|d| d.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        Some(digest.clone())
    );

    let other = TrustPolicy::new().pin("greeter", &"0".repeat(64)).unwrap();
    let err = Loader::with_policy(other).load::<dyn Greeter>(&plugin).unwrap_err();
    assert!(matches!(err, LoadError::DigestMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("has SHA-256 {digest}")), "{err}");

    let unrelated = TrustPolicy::new().pin("someone-else", &digest).unwrap();
    let err = Loader::with_policy(unrelated).load::<dyn Greeter>(&plugin).unwrap_err();
    assert!(matches!(err, LoadError::NotPinned { .. }), "{err:?}");
    assert!(TrustPolicy::new().pins_from_lock("greeter nothex").is_err());
}

/// Under a policy with a key and a pin, both digests come from one pass over the
/// sealed copy; a file that cannot change (not copied: immutable, where this
/// environment can make one) is hashed where it is instead, to the same verdicts:
/// loads when signed and pinned, refused once one byte differs.
#[test]
fn signed_and_pinned_files_give_the_same_verdicts_copied_or_not() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let keys = keypair(dir.path(), "release");
    let plugin = greeter_copy(dir.path(), "greeter.so");
    sign(&keys, &plugin);
    let digest = sha256_of(&plugin);
    let policy = policy_with(&keys).pin("greeter", &digest).unwrap().strict_modes(false);
    let loader = Loader::with_policy(policy);
    let hex = |d: [u8; 32]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();

    let inspected = loader.inspect(&plugin).unwrap();
    assert!(inspected.sealed_copy() && inspected.signed_by().is_some());
    assert_eq!(inspected.sha256().map(hex), Some(digest.clone()));
    let p = inspected.check::<dyn Greeter>().unwrap().load().unwrap();
    assert_eq!(p.greet("Mundo").unwrap(), "Olá, Mundo 👋");

    // The same bytes but one, same signature and pin: refused for the digest first.
    let tampered = greeter_copy(dir.path(), "tampered.so");
    std::fs::copy(format!("{}.minisig", plugin.display()), format!("{}.minisig", tampered.display())).unwrap();
    let mut bytes = std::fs::read(&tampered).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&tampered, bytes).unwrap();
    let err = loader.load::<dyn Greeter>(&tampered).unwrap_err();
    assert!(matches!(err, LoadError::DigestMismatch { .. }), "{err:?}");
    let signed_only = Loader::with_policy(policy_with(&keys).strict_modes(false));
    let err = signed_only.load::<dyn Greeter>(&tampered).unwrap_err();
    assert!(matches!(err, LoadError::BadSignature { .. }), "{err:?}");

    // Not copied: the file itself, hashed through its descriptor.
    struct Mutable<'a>(&'a Path);
    impl Drop for Mutable<'_> {
        fn drop(&mut self) {
            let _ = tomada_test_support::set_immutable(self.0, false);
        }
    }
    for (file, good) in [(&plugin, true), (&tampered, false)] {
        if let Err(e) = tomada_test_support::set_immutable(file, true) {
            eprintln!("skipped the immutable half: {e} (needs root and a file system with the flag)");
            return;
        }
        let _mutable = Mutable(file);
        let result = signed_only.inspect(file);
        match result {
            Ok(inspected) if good => assert!(!inspected.sealed_copy() && inspected.signed_by().is_some()),
            Err(LoadError::BadSignature { .. }) if !good => {}
            other => panic!("{}: {:?}", file.display(), other.map(|i| i.sealed_copy())),
        }
    }
}

#[cfg(unix)]
#[test]
fn files_others_can_change_are_refused_under_a_policy() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let keys = keypair(dir.path(), "release");
    let loader = Loader::with_policy(policy_with(&keys));

    let writable = greeter_copy(dir.path(), "writable.so");
    sign(&keys, &writable);
    std::fs::set_permissions(&writable, std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = loader.load::<dyn Greeter>(&writable).unwrap_err();
    assert!(matches!(err, LoadError::Permissions { .. }), "{err:?}");
    assert!(err.to_string().contains("writable by its group or others (mode 666)"), "{err}");

    let open_dir = dir.path().join("open");
    std::fs::create_dir(&open_dir).unwrap();
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let inside = greeter_copy(&open_dir, "inside.so");
    sign(&keys, &inside);
    let err = loader.load::<dyn Greeter>(&inside).unwrap_err();
    assert!(err.to_string().contains("is writable by others and not sticky (mode 777)"), "{err}");
    // Sticky, like /tmp: fine.
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    loader.load::<dyn Greeter>(&inside).unwrap();

    // Owned by someone else (root may chown).
    let theirs = greeter_copy(dir.path(), "theirs.so");
    sign(&keys, &theirs);
    std::os::unix::fs::chown(&theirs, Some(4242), None).unwrap();
    let err = loader.load::<dyn Greeter>(&theirs).unwrap_err();
    assert!(err.to_string().contains("owned by uid 4242"), "{err}");
}

/// Issue 16, item 10: StrictModes checks every directory on the path after resolving
/// links, as sshd does: a pinned plugin (its digest is right) is refused in a
/// group-writable directory, below a directory owned by another user, and through a
/// symlink into a world-writable one; the same file in a safe directory loads.
#[cfg(unix)]
#[test]
fn strict_modes_check_every_directory_after_resolving_links() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let digest = sha256_of(&cdylib("greeter"));
    let loader = Loader::with_policy(TrustPolicy::new().pin("greeter", &digest).unwrap());
    let refused = |path: &Path, why: &str| {
        let err = loader.load::<dyn Greeter>(path).map(drop).unwrap_err();
        assert!(matches!(err, LoadError::Permissions { .. }), "{err:?}");
        assert!(err.to_string().contains(why), "{path:?}: {err}");
    };

    // The control: a safe directory.
    let safe = dir.path().join("safe");
    std::fs::create_dir(&safe).unwrap();
    mode(&safe, 0o755);
    let plugin = greeter_copy(&safe, "greeter.so");
    loader.load::<dyn Greeter>(&plugin).unwrap();

    // A group-writable directory, one level above the file's.
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(shared.join("sub")).unwrap();
    mode(&shared, 0o775);
    let inside = greeter_copy(&shared.join("sub"), "greeter.so");
    refused(&inside, &format!("directory `{}` is writable by its group and not sticky (mode 775)", shared.display()));

    // Through a symlink (in the safe directory) into a world-writable one.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    let target = greeter_copy(&open, "greeter.so");
    mode(&open, 0o777);
    let link = safe.join("linked.so");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    refused(&link, "is writable by others and not sticky (mode 777)");
    // A symlinked directory on the way, the same.
    let dir_link = safe.join("to-open");
    std::os::unix::fs::symlink(&open, &dir_link).unwrap();
    refused(&dir_link.join("greeter.so"), "is writable by others and not sticky (mode 777)");

    // A directory owned by another user (root can make one; another user cannot).
    // SAFETY: `geteuid` has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let theirs = dir.path().join("theirs");
        std::fs::create_dir_all(theirs.join("mine")).unwrap();
        let plugin = greeter_copy(&theirs.join("mine"), "greeter.so");
        std::os::unix::fs::chown(&theirs, Some(4242), Some(4242)).unwrap();
        refused(&plugin, &format!("directory `{}` is owned by uid 4242", theirs.display()));
    }
}

/// A key pair made by the `minisign` tool itself (no password): public and secret key files.
fn minisign_keys(dir: &Path) -> (PathBuf, PathBuf) {
    let (public, secret) = (dir.join("mk.pub"), dir.join("mk.key"));
    let status = Command::new("minisign")
        .args(["-G", "-W", "-p"])
        .arg(&public)
        .arg("-s")
        .arg(&secret)
        .status()
        .expect("this test needs the `minisign` tool (Debian package `minisign`; .ci/run installs it)");
    assert!(status.success());
    (public, secret)
}

#[test]
fn a_file_signed_by_the_minisign_tool_loads() {
    let dir = tempfile::tempdir().unwrap();
    let (public, secret) = minisign_keys(dir.path());
    let plugin = greeter_copy(dir.path(), "greeter.so");
    let status = Command::new("minisign").arg("-S").arg("-s").arg(&secret).arg("-m").arg(&plugin).status().unwrap();
    assert!(status.success());
    let policy = TrustPolicy::new().trust_key_file(&public).unwrap();
    let p = Loader::with_policy(policy).load::<dyn Greeter>(&plugin).unwrap();
    assert_eq!(p.greet("x").unwrap(), "Olá, x 👋");
}

/// Both Ed25519 signatures of a minisign file are checked: the one of the file's
/// BLAKE2b-512, and the global one over it and the trusted comment (an edited
/// comment is a bad signature). A legacy signature (`minisign -S -l`: of the whole
/// file, not prehashed) is refused with its own reason.
#[test]
fn the_trusted_comment_is_signed_and_legacy_signatures_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (public, secret) = minisign_keys(dir.path());
    let loader = Loader::with_policy(TrustPolicy::new().trust_key_file(&public).unwrap());
    let signature = |plugin: &Path| PathBuf::from(format!("{}.minisig", plugin.display()));

    let edited = greeter_copy(dir.path(), "edited.so");
    let status = Command::new("minisign").arg("-S").arg("-s").arg(&secret).arg("-m").arg(&edited).status().unwrap();
    assert!(status.success());
    assert!(loader.inspect(&edited).is_ok(), "signed as it is");
    let text = std::fs::read_to_string(signature(&edited)).unwrap();
    // (The first line, `untrusted comment: ...`, is not signed: edit the third.)
    let forged = text.replacen("\ntrusted comment: ", "\ntrusted comment: approved by the admin ", 1);
    assert_ne!(forged, text);
    std::fs::write(signature(&edited), forged).unwrap();
    let err = loader.inspect(&edited).unwrap_err();
    assert!(matches!(err, LoadError::BadSignature { .. }), "{err:?}");
    // The file is what was signed: the comment is what changed, and it says so.
    assert!(err.to_string().contains("trusted comment that is not the one signed"), "{err}");
    assert!(!err.to_string().contains("the file is not what was signed"), "{err}");

    // A signature file of garbage is said to be one, not a file unlike what was signed.
    let garbage = greeter_copy(dir.path(), "garbage.so");
    std::fs::write(signature(&garbage), "untrusted comment: x\nnot base64 at all\n").unwrap();
    let err = loader.inspect(&garbage).unwrap_err();
    assert!(matches!(err, LoadError::BadSignature { .. }), "{err:?}");
    assert!(err.to_string().contains("is not a minisign signature"), "{err}");
    assert!(!err.to_string().contains("the file is not what was signed"), "{err}");

    let legacy = greeter_copy(dir.path(), "legacy.so");
    let status =
        Command::new("minisign").args(["-S", "-l", "-s"]).arg(&secret).arg("-m").arg(&legacy).status().unwrap();
    assert!(status.success());
    let err = loader.inspect(&legacy).unwrap_err();
    assert!(matches!(err, LoadError::BadSignature { .. }), "{err:?}");
    assert!(err.to_string().contains("a legacy signature of the whole file, not prehashed"), "{err}");
    assert!(!err.to_string().contains("the file is not what was signed"), "{err}");
}

// ---- audit trail ----

type Event = Vec<(String, String)>;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Event>>>);

struct Fields(Vec<(String, String)>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "tomada::audit" {
            let mut fields = Fields(Vec::new());
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
    }
}

/// Runs in a child process (this test re-executed): `tracing` caches per-callsite
/// interest process-wide, and other tests load plugins on other threads meanwhile.
#[test]
fn every_load_and_refusal_is_an_audit_event() {
    if std::env::var_os("TOMADA_AUDIT_CHILD").is_none() {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "trust::every_load_and_refusal_is_an_audit_event", "--nocapture", "--test-threads=1"])
            .env("TOMADA_AUDIT_CHILD", "1")
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
        return;
    }
    use tracing_subscriber::layer::SubscriberExt;
    let dir = tempfile::tempdir().unwrap();
    let keys = keypair(dir.path(), "release");
    let good = greeter_copy(dir.path(), "good.so");
    sign(&keys, &good);
    let bad = greeter_copy(dir.path(), "bad.so");
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        let loader = Loader::with_policy(policy_with(&keys));
        loader.load::<dyn Greeter>(&good).unwrap();
        loader.load::<dyn Greeter>(&bad).unwrap_err();
        tomada_host::load::<dyn Greeter>(&bad).unwrap();
    });
    let events = capture.0.lock().unwrap();
    let field = |e: &Vec<(String, String)>, k: &str| e.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    let digest = sha256_of(&good);
    assert_eq!(field(&events[0], "decision"), "loaded");
    assert_eq!(field(&events[0], "sha256"), digest);
    assert_eq!(field(&events[0], "key").len(), 16);
    assert!(field(&events[0], "file").ends_with("good.so"));
    assert_eq!(field(&events[1], "decision"), "refused");
    assert!(field(&events[1], "reason").contains("is not signed"));
    assert_eq!(field(&events[1], "sha256"), digest, "same bytes, same digest");
    assert_eq!(field(&events[2], "decision"), "loaded");
    assert_eq!(field(&events[2], "key"), "");
    // No policy, but the audit trail listens: the copy is of the whole file (not of
    // what loads only), and its digest is the file's.
    assert_eq!(field(&events[2], "sha256"), digest, "the audit trail hashes the whole file");
}
