//! `Reloadable`: a reload swaps in a version only when it passes every check; calls
//! in flight finish on their version; old versions go when their last user does.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use living_api::Living;
use pluginapi::Greeter;
use tomada_host::{LoadError, Loader, ReloadEvent, Reloadable, TrustPolicy};
use tomada_test_support::{cdylib, copy_to, mapped_copies, wait_until};

use crate::image::{cp_over, isolation, living};

fn loaders() -> [(&'static str, Loader); 2] {
    [("in-process", Loader::new()), ("isolated", Loader::new().isolated(isolation()))]
}

/// The next event, or a hang guard's panic.
pub fn next_event(rx: &std::sync::mpsc::Receiver<ReloadEvent>) -> ReloadEvent {
    rx.recv_timeout(tomada_test_support::HANG_GUARD).expect("a reload event")
}

/// A copy of `src` whose second half is missing (a build still being written).
pub fn truncated(src: &Path, dir: &Path) -> PathBuf {
    let bytes = std::fs::read(src).unwrap();
    let path = dir.join("truncated.bin");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    path
}

#[test]
fn a_reload_swaps_in_a_good_build_and_refuses_bad_ones_keeping_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = (living("1.0.0"), living("2.0.0"));
    type Bad = (&'static str, PathBuf, fn(&LoadError) -> bool);
    let bad: [Bad; 3] = [
        ("incompatible (ABI 2)", cdylib("wrong-abi"), |e| matches!(e, LoadError::AbiMismatch { .. })),
        ("truncated", truncated(&v2, dir.path()), |e| {
            matches!(e, LoadError::NotALibrary { .. } | LoadError::Damaged { .. })
        }),
        ("constructor panics", cdylib("panics-in-new"), |e| matches!(e, LoadError::InitPanicked { .. })),
    ];
    for (mode, loader) in loaders() {
        let path = copy_to(&v1, dir.path(), &format!("greeter-{mode}.so"));
        let plugin: Reloadable<dyn Greeter> = loader.reloadable(&path).unwrap();
        let events = plugin.events();
        assert_eq!(plugin.generation(), 1);
        let old = plugin.current();
        assert_eq!(old.greet("a").unwrap(), "Olá, a (v1.0.0)", "{mode}");

        cp_over(&v2, &path);
        assert_eq!(plugin.reload().unwrap(), 2, "{mode}");
        assert_eq!(plugin.current().greet("b").unwrap(), "Olá, b (v2.0.0)", "{mode}");
        assert_eq!(old.greet("c").unwrap(), "Olá, c (v1.0.0)", "{mode}: a snapshot keeps its version");
        match next_event(&events) {
            ReloadEvent::Reloaded { generation: 2, from, to, .. } => {
                assert_eq!((from.version.as_str(), to.version.as_str()), ("1.0.0", "2.0.0"), "{mode}");
            }
            other => panic!("{mode}: {other:?}"),
        }
        for (what, file, expected) in &bad {
            cp_over(file, &path);
            let err = plugin.reload().expect_err(what);
            assert!(expected(&err.why), "{mode}: {what}: {err}");
            assert_eq!(err.serving, 2, "{mode}: {what}");
            assert!(err.to_string().contains("keeps serving"), "{err}");
            assert_eq!(plugin.generation(), 2, "{mode}: {what}");
            assert_eq!(plugin.current().greet("d").unwrap(), "Olá, d (v2.0.0)", "{mode}: {what}: the old one serves");
            match next_event(&events) {
                ReloadEvent::Refused { generation: 2, why } => assert!(expected(&why), "{mode}: {what}: {why}"),
                other => panic!("{mode}: {what}: {other:?}"),
            }
        }
        // Deleted: refused too, and still serving.
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(*plugin.reload().unwrap_err().why, LoadError::NotFound { .. }), "{mode}");
        assert_eq!(plugin.current().greet("e").unwrap(), "Olá, e (v2.0.0)", "{mode}");
        cp_over(&v1, &path);
        assert_eq!(plugin.reload().unwrap(), 3, "{mode}");
        assert_eq!(plugin.current().greet("f").unwrap(), "Olá, f (v1.0.0)", "{mode}");
    }
}

/// The loader's trust policy applies to every reload: an unsigned build is refused
/// (and a signed one, of the same bytes, then accepted).
#[test]
fn a_reload_under_a_policy_refuses_an_unsigned_build() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::new(dir.path());
    let policy = TrustPolicy::new().trust_key_file(&keys.public).unwrap().strict_modes(false);
    for (mode, loader) in loaders() {
        let path = copy_to(&living("1.0.0"), dir.path(), &format!("signed-{mode}.so"));
        keys.sign(&path);
        let plugin: Reloadable<dyn Greeter> = loader.policy(policy.clone()).reloadable(&path).unwrap();
        cp_over(&living("2.0.0"), &path);
        std::fs::remove_file(Keys::signature(&path)).unwrap();
        let err = plugin.reload().unwrap_err();
        assert!(matches!(*err.why, LoadError::Unsigned { .. }), "{mode}: {err}");
        assert_eq!(plugin.current().greet("x").unwrap(), "Olá, x (v1.0.0)", "{mode}");
        keys.sign(&path);
        plugin.reload().unwrap();
        assert_eq!(plugin.current().greet("x").unwrap(), "Olá, x (v2.0.0)", "{mode}");
    }
}

/// An old version is unloaded once its last snapshot and object are gone, not
/// before: in-process its sealed copy leaves `/proc/self/maps`; isolated its process
/// ends.
#[test]
fn an_old_version_goes_with_its_last_snapshot_and_object() {
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = (living("1.0.0"), living("2.0.0"));
    for (mode, loader) in loaders() {
        let name = format!("old-goes-{mode}.so");
        let path = copy_to(&v1, dir.path(), &name);
        let plugin: Reloadable<dyn Living> = loader.reloadable(&path).unwrap();
        let snapshot = plugin.current();
        let counter = snapshot.counter(5).unwrap();
        let old_pid = snapshot.process_id();
        cp_over(&v2, &path);
        plugin.reload().unwrap();
        if mode == "in-process" {
            assert_eq!(mapped_copies(&name), 2, "both versions are loaded");
        }
        drop(snapshot);
        // The object still holds version 1.
        assert_eq!(counter.next().unwrap(), 5);
        assert_eq!(counter.version().unwrap(), "1.0.0");
        assert_eq!(plugin.current().version().unwrap(), "2.0.0");
        if let Some(pid) = old_pid {
            assert!(!crate::image::is_dead(pid), "{mode}: the old process ended with an object held");
        }
        drop(counter);
        match old_pid {
            // (Looked at again meanwhile: another test's thread, started since the
            // load on a reused stack, can hold a stale word of a plugin once mapped at
            // the same addresses, and keep it until it has gone on.)
            None => wait_until("the old version's unmapping", || {
                tomada_host::unload_pinned_libraries();
                mapped_copies(&name) == 1
            }),
            Some(pid) => wait_until("the old process's end", || crate::image::is_dead(pid)),
        }
        assert_eq!(plugin.current().version().unwrap(), "2.0.0", "{mode}");
    }
}

/// Under load: eight host threads call continuously while the file is replaced 30
/// times, in both modes, by valid builds (two versions), an incompatible build, a
/// truncated copy, a build whose constructor panics and an unsigned one under a
/// policy, each followed by a reload. Not one call fails, every answer comes from a
/// valid version, and the host ends on the last valid version. After each
/// replacement the test waits until every thread has made a call more, so calls
/// overlap every swap whatever the scheduling (no timing). (The figures, with 1,000
/// replacements: `benches/reload.rs`.)
#[test]
fn under_load_no_call_fails_across_many_replacements() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::new(dir.path());
    let policy = TrustPolicy::new().trust_key_file(&keys.public).unwrap().strict_modes(false);
    let (v1, v2) = (living("1.0.0"), living("2.0.0"));
    let broken = truncated(&v1, dir.path());
    // Each file signed once (signing hashes it whole): the steps write these.
    let signed = |file: &Path| Some(keys.signature_of(file));
    let steps: [(PathBuf, Option<String>, Option<&'static str>); 6] = [
        (v2.clone(), signed(&v2), Some("2.0.0")),
        (cdylib("wrong-abi"), signed(&cdylib("wrong-abi")), None),
        (v1.clone(), signed(&v1), Some("1.0.0")),
        (broken.clone(), signed(&broken), None),
        (v2.clone(), None, None), // unsigned
        (cdylib("panics-in-new"), signed(&cdylib("panics-in-new")), None),
    ];
    for (mode, loader) in loaders() {
        let path = copy_to(&v1, dir.path(), &format!("loaded-{mode}.so"));
        keys.sign(&path);
        let plugin: Reloadable<dyn Greeter> = loader.policy(policy.clone()).reloadable(&path).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let counts: Arc<Vec<AtomicU64>> = Arc::new((0..THREADS).map(|_| AtomicU64::new(0)).collect());
        let callers: Vec<_> = (0..THREADS)
            .map(|i| {
                let (plugin, stop, counts) = (plugin.clone(), stop.clone(), counts.clone());
                std::thread::spawn(move || {
                    let mut failures = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        match plugin.current().greet("x") {
                            Ok(g) if g == "Olá, x (v1.0.0)" || g == "Olá, x (v2.0.0)" => {}
                            other => failures.push(format!("{other:?}")),
                        }
                        counts[i].fetch_add(1, Ordering::Relaxed);
                        // Pacing only (the overlap with every swap is made certain by
                        // the main thread's wait below): spinning threads on a shared
                        // machine would slow the reloads they are meant to overlap.
                        std::thread::sleep(std::time::Duration::from_micros(100));
                    }
                    failures
                })
            })
            .collect();
        let everyone_called_again = || {
            let seen: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
            wait_until("every thread calling again", || {
                counts.iter().zip(&seen).all(|(c, s)| c.load(Ordering::Relaxed) > *s)
            });
        };
        let (mut swaps, mut refusals) = (0, 0);
        let mut last_valid = "1.0.0";
        for round in 0..ROUNDS {
            for (file, signature, valid) in &steps {
                cp_over(file, &path);
                match signature {
                    Some(signature) => std::fs::write(Keys::signature(&path), signature).unwrap(),
                    None => std::fs::remove_file(Keys::signature(&path)).unwrap(),
                }
                match (plugin.reload(), valid) {
                    (Ok(_), Some(v)) => {
                        swaps += 1;
                        last_valid = v;
                    }
                    (Err(_), None) => refusals += 1,
                    (outcome, _) => panic!("{mode}: round {round}: {} gave {outcome:?}", file.display()),
                }
                everyone_called_again();
            }
        }
        stop.store(true, Ordering::Relaxed);
        let calls: u64 = counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        eprintln!("{mode}: {calls} calls by {THREADS} threads across {swaps} swaps and {refusals} refusals");
        let failures: Vec<String> = callers.into_iter().flat_map(|t| t.join().unwrap()).collect();
        assert!(
            failures.is_empty(),
            "{mode}: {} calls failed: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        assert_eq!((swaps, refusals), (2 * ROUNDS, 4 * ROUNDS), "{mode}");
        assert_eq!(plugin.generation(), 1 + 2 * ROUNDS as u64, "{mode}");
        assert_eq!(plugin.current().greet("x").unwrap(), format!("Olá, x (v{last_valid})"), "{mode}");
    }
}

/// A minisign key pair, as `minisign -G` makes.
pub struct Keys {
    pub public: PathBuf,
    secret: minisign::SecretKey,
}

impl Keys {
    pub fn new(dir: &Path) -> Keys {
        let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let public = dir.join("reload.pub");
        std::fs::write(&public, pair.pk.to_box().unwrap().to_string()).unwrap();
        Keys { public, secret: pair.sk }
    }

    /// `FILE.minisig`.
    pub fn signature(file: &Path) -> PathBuf {
        let mut name = file.as_os_str().to_owned();
        name.push(".minisig");
        PathBuf::from(name)
    }

    /// Signs `file` (`minisign -S`).
    pub fn sign(&self, file: &Path) {
        std::fs::write(Keys::signature(file), self.signature_of(file)).unwrap();
    }

    /// What `minisign -S` would write for `file`.
    pub fn signature_of(&self, file: &Path) -> String {
        minisign::sign(None, &self.secret, std::fs::File::open(file).unwrap(), None, None).unwrap().to_string()
    }
}

/// State hand-off, opt-in: with it, the new version's constructor receives the old
/// one's state (here its running total, through a contract method) as its context;
/// without it, the new instance starts fresh.
#[test]
fn state_is_handed_over_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = (living("1.0.0"), living("2.0.0"));
    for (mode, loader) in loaders() {
        for handed in [true, false] {
            let path = copy_to(&v1, dir.path(), &format!("state-{mode}-{handed}.so"));
            let plugin: Reloadable<dyn Living> = loader.reloadable(&path).unwrap();
            if handed {
                plugin.hand_off(|old| old.state().ok());
            }
            assert_eq!(plugin.current().add(5).unwrap(), 5);
            assert_eq!(plugin.current().add(7).unwrap(), 12);
            cp_over(&v2, &path);
            plugin.reload().unwrap();
            let now = plugin.current();
            assert_eq!(now.version().unwrap(), "2.0.0", "{mode}");
            let expected = if handed { 13 } else { 1 };
            assert_eq!(now.add(1).unwrap(), expected, "{mode}: handed over: {handed}");
        }
    }
}
