//! Unload that never crashes: a plugin that leaves behind something that would run
//! its code after unloading — a thread, a signal handler, a `pthread_key`
//! destructor — is kept mapped and reported, and the host does not crash when that
//! code runs later. Checked through `/proc/self/maps`.

use living_api::Living;
use tomada_host::{Hazard, Loader, pinned_libraries};
use tomada_test_support::{copy_to, wait_until};

use crate::image::living;

fn mapped(name: &str) -> bool {
    std::fs::read_to_string("/proc/self/maps").unwrap().contains(&format!("/memfd:tomada:{name}"))
}

/// Loads a fresh copy named `name`, has it leave `hazard` behind, drops it, and
/// returns whether it stayed mapped and what was reported for it.
fn leave_and_drop(hazard: &str, name: &str) -> Vec<Hazard> {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_to(&living("1.0.0"), dir.path(), name);
    let plugin = Loader::new().load::<dyn Living>(&path).unwrap();
    if hazard != "nothing" {
        assert!(plugin.hazard(hazard).unwrap(), "the fixture knows {hazard}");
    }
    assert!(mapped(name));
    drop(plugin);
    pinned_libraries().into_iter().filter(|r| r.path == path).flat_map(|r| r.hazards).collect()
}

/// The control: a plugin that leaves nothing behind is unmapped once dropped.
#[test]
fn a_plugin_that_leaves_nothing_is_unmapped() {
    let reported = leave_and_drop("nothing", "hazard-none.so");
    assert!(reported.is_empty(), "{reported:?}");
    wait_until("the library's unmapping", || !mapped("hazard-none.so"));
}

/// A signal handler in the library: kept mapped; the signal, raised after the
/// plugin is gone, runs the handler (without the pin: SIGSEGV at an unmapped address).
#[test]
fn a_signal_handler_keeps_the_library_mapped() {
    let reported = leave_and_drop("signal", "hazard-signal.so");
    assert!(reported.contains(&Hazard::SignalHandler { signal: libc::SIGUSR2 }), "{reported:?}");
    assert!(mapped("hazard-signal.so"), "unmapped with a handler installed");
    // SAFETY: raises SIGUSR2 in this thread: its handler, the plugin's, does nothing.
    assert_eq!(unsafe { libc::raise(libc::SIGUSR2) }, 0);
    // SAFETY: restores the default action (SIGUSR2 is used by no other test).
    unsafe { libc::signal(libc::SIGUSR2, libc::SIG_DFL) };
}

/// A thread the plugin started, still running its code: kept mapped.
#[test]
fn a_thread_still_in_the_library_keeps_it_mapped() {
    let reported = leave_and_drop("thread", "hazard-thread.so");
    assert!(reported.iter().any(|h| matches!(h, Hazard::Thread { .. })), "{reported:?}");
    assert!(mapped("hazard-thread.so"), "unmapped under a running thread");
}

/// A `pthread_key_create` destructor, with a value set on a thread: kept mapped;
/// the destructor runs when that thread exits (here, a thread of the test's own,
/// which makes the call and then ends).
#[test]
fn a_pthread_key_destructor_keeps_the_library_mapped() {
    let reported = std::thread::spawn(|| leave_and_drop("key", "hazard-key.so")).join().unwrap();
    assert!(reported.iter().any(|h| matches!(h, Hazard::KeyDestructor { .. })), "{reported:?}");
    assert!(mapped("hazard-key.so"), "unmapped with a key destructor registered");
}

/// A thread-local destructor: glibc itself keeps the library mapped until the thread
/// that registered one exits; nothing crashes when it does.
#[test]
fn a_thread_local_destructor_is_left_to_glibc() {
    std::thread::spawn(|| {
        let _ = leave_and_drop("tls", "hazard-tls.so");
        assert!(mapped("hazard-tls.so"), "glibc unmapped a library with a live thread-local destructor");
    })
    .join()
    .unwrap();
}
