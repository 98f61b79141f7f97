//! `Reloadable::watch`: the file rebuilt, copied over, renamed over, deleted and
//! created again — each settled new version reloads by itself; a bad one is refused
//! once and the old version keeps serving. The test waits for events, never on time.

use std::path::Path;

use pluginapi::Greeter;
use tomada_host::{LoadError, Loader, ReloadEvent, Reloadable};
use tomada_test_support::{cdylib, copy_to};

use crate::image::{cp_over, isolation, living, mv_over};
use crate::reloading::{next_event, truncated};

/// Waits for the reload of version `version`, passing over refusals (a file caught
/// while still being written is refused, then reloaded when it settles).
fn reloaded_to(events: &std::sync::mpsc::Receiver<ReloadEvent>, version: &str) -> u64 {
    loop {
        match next_event(events) {
            ReloadEvent::Reloaded { generation, to, .. } if to.version == version => return generation,
            ReloadEvent::Reloaded { to, .. } => panic!("reloaded to {}, not {version}", to.version),
            _ => {}
        }
    }
}

/// What `cargo build` does to a cdylib in `target/`: removes it, then hard-links the
/// new one from `deps/` in its place.
fn like_cargo_build(src: &Path, dst: &Path) {
    let deps = dst.with_extension("deps.so");
    let _ = std::fs::remove_file(&deps);
    std::fs::copy(src, &deps).unwrap();
    std::fs::remove_file(dst).unwrap();
    std::fs::hard_link(&deps, dst).unwrap();
}

#[test]
fn a_watched_plugin_reloads_each_new_build_and_refuses_bad_ones() {
    let (v1, v2) = (living("1.0.0"), living("2.0.0"));
    for (mode, loader) in [("in-process", Loader::new()), ("isolated", Loader::new().isolated(isolation()))] {
        let dir = tempfile::tempdir().unwrap();
        let path = copy_to(&v1, dir.path(), "watched.so");
        let plugin: Reloadable<dyn Greeter> = loader.reloadable(&path).unwrap();
        let events = plugin.events();
        let _watch = plugin.watch().unwrap();

        cp_over(&v2, &path);
        reloaded_to(&events, "2.0.0");
        assert_eq!(plugin.current().greet("a").unwrap(), "Olá, a (v2.0.0)", "{mode}: after cp");

        mv_over(&v1, &path);
        reloaded_to(&events, "1.0.0");

        std::fs::remove_file(&path).unwrap();
        std::fs::copy(&v2, &path).unwrap();
        reloaded_to(&events, "2.0.0");

        like_cargo_build(&v1, &path);
        reloaded_to(&events, "1.0.0");

        // A bad replacement: refused (once it has settled), the old one serves.
        let broken = truncated(&v2, dir.path());
        cp_over(&broken, &path);
        match next_event(&events) {
            ReloadEvent::Refused { why, .. } => {
                assert!(matches!(*why, LoadError::NotALibrary { .. } | LoadError::Damaged { .. }), "{mode}: {why}");
            }
            other => panic!("{mode}: {other:?}"),
        }
        assert_eq!(plugin.current().greet("b").unwrap(), "Olá, b (v1.0.0)", "{mode}: after a refusal");
        // An incompatible build: refused too.
        cp_over(&cdylib("wrong-abi"), &path);
        loop {
            match next_event(&events) {
                ReloadEvent::Refused { why, .. } if matches!(*why, LoadError::AbiMismatch { .. }) => break,
                ReloadEvent::Refused { .. } => {}
                other => panic!("{mode}: {other:?}"),
            }
        }
        // And a good one after them.
        cp_over(&v2, &path);
        let generation = reloaded_to(&events, "2.0.0");
        assert_eq!(plugin.generation(), generation, "{mode}");
        assert_eq!(plugin.current().greet("c").unwrap(), "Olá, c (v2.0.0)", "{mode}");
    }
}

/// A watch leaves a file nobody changes alone: opening and reading it (the watch's own
/// reads, the loader's) are not changes. Before, each of the watch's looks at the
/// file was an event that made the next look, so it re-read the file about five
/// times a second for as long as it ran. Counted with an inotify watch of our own:
/// with no write at all, nothing may open the file. (A pass does not depend on
/// timing; the second below only gives the old loop time to show itself.)
#[test]
fn a_watch_does_not_wake_itself_by_reading_the_file() {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;

    let dir = tempfile::tempdir().unwrap();
    let path = copy_to(&living("1.0.0"), dir.path(), "untouched.so");
    let plugin: Reloadable<dyn Greeter> = Loader::new().reloadable(&path).unwrap();
    // `watch()` looks at the file once before it returns.
    let _watch = plugin.watch().unwrap();
    // SAFETY: a new inotify descriptor, owned below.
    let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just returned and is owned by nobody else.
    let inotify = unsafe { OwnedFd::from_raw_fd(fd) };
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: watches the file's opens; `name` is NUL-terminated.
    let wd = unsafe { libc::inotify_add_watch(fd, name.as_ptr(), libc::IN_OPEN) };
    assert!(wd >= 0, "{}", std::io::Error::last_os_error());
    std::thread::sleep(std::time::Duration::from_secs(1));
    let mut buf = [0u8; 4096];
    // SAFETY: reads at most `buf.len()` bytes into `buf` from the descriptor owned above.
    let read = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    let err = std::io::Error::last_os_error();
    assert!(read < 0 && err.kind() == std::io::ErrorKind::WouldBlock, "the file was opened ({read} bytes of events)");
    drop(inotify);
    assert_eq!(plugin.generation(), 1);
}

/// A plugin path that is a symbolic link into a build directory
/// (`plugins/watched.so -> ../build/libliving.so`): a change to the file it leads to
/// (rewritten in place, rebuilt as cargo does, renamed over) reloads it, though
/// nothing in the link's directory changed; the link changed to lead into another
/// directory (as `ln -sfn` does: a new link renamed over it) reloads what it now
/// leads to, and a change there reloads again. Before, only the link's directory was
/// watched: no change to the target was ever seen.
#[test]
fn a_watched_symlink_reloads_when_the_file_it_leads_to_changes() {
    let (v1, v2) = (living("1.0.0"), living("2.0.0"));
    let root = tempfile::tempdir().unwrap();
    let (plugins, build, other) = (root.path().join("plugins"), root.path().join("build"), root.path().join("other"));
    for dir in [&plugins, &build, &other] {
        std::fs::create_dir(dir).unwrap();
    }
    let target = copy_to(&v1, &build, "libliving.so");
    let link = plugins.join("watched.so");
    std::os::unix::fs::symlink("../build/libliving.so", &link).unwrap();
    let plugin: Reloadable<dyn Greeter> = Loader::new().reloadable(&link).unwrap();
    let events = plugin.events();
    let _watch = plugin.watch().unwrap();
    assert_eq!(plugin.current().greet("a").unwrap(), "Olá, a (v1.0.0)");

    cp_over(&v2, &target);
    reloaded_to(&events, "2.0.0");
    assert_eq!(plugin.current().greet("b").unwrap(), "Olá, b (v2.0.0)", "after cp onto the target");

    like_cargo_build(&v1, &target);
    reloaded_to(&events, "1.0.0");

    mv_over(&v2, &target);
    reloaded_to(&events, "2.0.0");

    // Retargeted into another directory, to version 1 there.
    let elsewhere = copy_to(&v1, &other, "libliving.so");
    let new_link = plugins.join("watched.so.new");
    std::os::unix::fs::symlink(&elsewhere, &new_link).unwrap();
    std::fs::rename(&new_link, &link).unwrap();
    reloaded_to(&events, "1.0.0");
    assert_eq!(plugin.current().greet("c").unwrap(), "Olá, c (v1.0.0)", "after the link was retargeted");

    // A change in the new target's directory is seen.
    cp_over(&v2, &elsewhere);
    let generation = reloaded_to(&events, "2.0.0");
    assert_eq!(plugin.generation(), generation);
    assert_eq!(plugin.current().greet("d").unwrap(), "Olá, d (v2.0.0)", "after a change to the new target");
}
