//! The typed reasons inside `LoadError` and `PolicyError`, each produced from a real
//! file or real input, matched as values (what a caller does), with the message a
//! person reads checked beside them.

use std::path::Path;
use std::process::Command;

use pluginapi::Greeter;
use tomada_host::{Damage, LoadError, Loader, NotLibrary, PolicyError, TrustPolicy};
use tomada_test_support::{cdylib, copy_to, find};

fn cc(args: &[&str], dir: &Path) {
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let status = Command::new(cc).args(args).current_dir(dir).status().expect("this test needs a C compiler (`cc`)");
    assert!(status.success(), "cc {args:?} failed");
}

/// An object file never linked, an archive of one, and an executable that is not
/// position-independent: each is what it is, not a plugin.
#[cfg(target_os = "linux")]
#[test]
fn what_a_file_is_instead_of_a_library() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.c"), "int f(void) { return 1; }\nint main(void) { return f(); }\n").unwrap();
    cc(&["-c", "-o", "f.o", "f.c"], dir.path());
    cc(&["-no-pie", "-o", "f", "f.c"], dir.path());
    let status = Command::new("ar").args(["rcs", "libf.a", "f.o"]).current_dir(dir.path()).status();
    assert!(status.expect("this test needs `ar` (binutils)").success());
    let refused = |name: &str| tomada_host::inspect(dir.path().join(name)).unwrap_err();

    let err = refused("f.o");
    assert!(matches!(&err, LoadError::NotALibrary { reason: NotLibrary::Relocatable, .. }), "{err:?}");
    assert!(err.to_string().contains("it is an object file (`.o`) that was never linked"), "{err}");
    let err = refused("libf.a");
    assert!(
        matches!(&err, LoadError::NotALibrary { reason: NotLibrary::OtherFormat { format }, .. } if format == "Archive"),
        "{err:?}"
    );
    let err = refused("f");
    assert!(matches!(&err, LoadError::NotALibrary { reason: NotLibrary::Executable, .. }), "{err:?}");
    assert!(err.to_string().contains("is not a shared library: it is an executable"), "{err}");
}

/// A loadable segment that claims to run past the end of the file (what a copy cut
/// short whose headers survived looks like): where it ends and the file's length,
/// as numbers.
#[cfg(target_os = "linux")]
#[test]
fn a_segment_past_the_end_of_the_file_says_where_it_ends() {
    let mut bytes = std::fs::read(cdylib("greeter")).unwrap();
    let len = bytes.len() as u64;
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    // ELF64: the program headers at `e_phoff`, 56 bytes each; the first `PT_LOAD`'s
    // `p_filesz` made 4 KiB longer than the file.
    let phoff = u64_at(&bytes, 0x20) as usize;
    let phnum = u16::from_le_bytes([bytes[0x38], bytes[0x39]]) as usize;
    let load = (0..phnum).map(|i| phoff + 56 * i).find(|&ph| bytes[ph..ph + 4] == [1, 0, 0, 0]).unwrap();
    let offset = u64_at(&bytes, load + 8);
    bytes[load + 32..load + 40].copy_from_slice(&(len + 4096).to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.so");
    std::fs::write(&path, &bytes).unwrap();
    let err = tomada_host::inspect(&path).unwrap_err();
    let LoadError::Damaged { reason: Damage::Truncated { segment_end, file_len }, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((*segment_end, *file_len), (offset + len + 4096, len));
    assert!(err.to_string().contains(&format!("a segment ends at byte {segment_end}, the file has {len}")), "{err}");
}

/// Rewritten in place (the same inode) between inspection and loading: what loads is
/// what was inspected, from the sealed copy made when the file was opened — the
/// rewrite changes nothing. (Without the copy, the descriptor the host holds saw the
/// rewrite, and the loaded descriptor's comparison with the inspection refused it as
/// `DescriptorMismatch` — the check that still guards platforms without the copy.)
#[cfg(target_os = "linux")]
#[test]
fn a_file_rewritten_between_inspection_and_loading_loads_what_was_inspected() {
    use std::io::{Seek, SeekFrom, Write};
    let dir = tempfile::tempdir().unwrap();
    let path = copy_to(&cdylib("greeter"), dir.path(), "rewritten.so");
    let checked = Loader::new().inspect(&path).unwrap().check::<dyn Greeter>().unwrap();
    // The description is in the manifest, which the loaded descriptor points to.
    let bytes = std::fs::read(&path).unwrap();
    let at = find(&bytes, "Plugin de exemplo".as_bytes()).expect("the greeter's description");
    let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.seek(SeekFrom::Start(at as u64)).unwrap();
    file.write_all(b"Plugin de ejemplo").unwrap();
    drop(file);
    let plugin = checked.load().unwrap();
    assert_eq!(plugin.info().description, "Plugin de exemplo que dá oi");
    assert_eq!(plugin.greet("Mundo").unwrap(), "Olá, Mundo 👋");
}

#[test]
fn every_way_a_policy_cannot_be_built() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pub");
    let err = TrustPolicy::new().trust_key_file(&missing).unwrap_err();
    assert!(
        matches!(&err, PolicyError::ReadKey { path, error } if path == &missing && error.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    assert!(err.to_string().starts_with(&format!("cannot read public key `{}`: ", missing.display())), "{err}");

    let garbage = dir.path().join("garbage.pub");
    std::fs::write(&garbage, "untrusted comment: not really\nRWnot-base64\n").unwrap();
    let err = TrustPolicy::new().trust_key_file(&garbage).unwrap_err();
    assert!(matches!(&err, PolicyError::NotAKey { path: Some(p) } if p == &garbage), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("`{}`: not a minisign public key (expected one base64 line starting `RW`)", garbage.display())
    );
    let err = TrustPolicy::new().trust_key("RWnot-base64").unwrap_err();
    assert!(matches!(&err, PolicyError::NotAKey { path: None }), "{err:?}");

    let err = TrustPolicy::new().pin("greeter", "abc").unwrap_err();
    assert!(matches!(&err, PolicyError::NotADigest { text, line: None } if text == "abc"), "{err:?}");
    let lock = format!("# plugins.lock\ngreeter {}\nkv 12345\n", "0".repeat(64));
    let err = TrustPolicy::new().pins_from_lock(&lock).unwrap_err();
    assert!(matches!(&err, PolicyError::NotADigest { text, line: Some(3) } if text == "12345"), "{err:?}");
    assert_eq!(err.to_string(), "line 3: `12345` is not a SHA-256 digest (64 hex digits)");
    let err = TrustPolicy::new().pins_from_lock("greeter\n").unwrap_err();
    assert!(matches!(&err, PolicyError::LockLine { line: 1, found } if found == "greeter"), "{err:?}");
    assert_eq!(err.to_string(), "line 1: expected `NAME SHA256` (the name first, unlike `sha256sum`), found `greeter`");
    // A `sha256sum` line (digest first) is told to be turned round, not that the name
    // is no digest.
    let sha256sum = format!("{}  greeter.so\n", "ab".repeat(32));
    let err = TrustPolicy::new().pins_from_lock(&sha256sum).unwrap_err();
    assert!(matches!(&err, PolicyError::LockLine { line: 1, .. }), "{err:?}");
    assert!(err.to_string().contains("the name first, unlike `sha256sum`"), "{err}");

    let err = TrustPolicy::new().min_version("greeter", "1.x").unwrap_err();
    assert!(matches!(&err, PolicyError::NotAVersion { text, .. } if text == "1.x"), "{err:?}");
    assert!(err.to_string().starts_with("`1.x` is not a semantic version: "), "{err}");
}
