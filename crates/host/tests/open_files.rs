//! The host's descriptors and an isolated plugin's: a host with many isolated plugins
//! under a low soft limit of open descriptors (1,024 is common) raises the soft limit
//! to the hard one when a start runs out, each plugin holds no more descriptors in the
//! host than its channel needs, and a child gets each descriptor at its number
//! whatever numbers the host has free.
//!
//! A test binary of its own, its tests one at a time: the limit, the count of open
//! descriptors and which numbers are free are the whole process's, which other tests
//! running beside them would move.

#![allow(missing_docs)]
#![cfg(target_os = "linux")]

use std::os::fd::AsRawFd;
use std::sync::Mutex;

use fault_api::Faulty;
use tomada_host::Plugin;
use tomada_host::isolate::{Isolation, Mode, Runner};
use tomada_test_support::{cdylib, lane_threads, wait_until};

/// Held by each test: they run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn isolation() -> Isolation {
    Isolation::new().runner(Runner::Path(env!("CARGO_BIN_EXE_tomada-runner").into()))
}

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn limit() -> libc::rlimit {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `getrlimit` writes one `rlimit` into a local.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    limit
}

#[test]
fn many_isolated_plugins_outgrow_a_low_soft_limit_of_open_files() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let isolation = isolation();
    let load = || tomada_host::load_with::<dyn Faulty>(cdylib("faulty"), &Mode::Isolated(isolation.clone())).unwrap();
    // One first, for what every plugin of the file shares (its sealed copy), and its
    // calls, which start nothing more.
    let first = load();
    assert_eq!(first.echo("first").unwrap(), "first");
    // Each plugin: the socket, the nudge's write end, the main rings' four bells,
    // four dormant lanes' bells, its output's two pipes and its process's pidfd (13).
    // (Not also a reader of each pipe the host writes: this process ignores
    // `SIGPIPE`, as Rust programs do.)
    let before = open_files();
    let ten: Vec<Plugin<dyn Faulty>> = (0..10).map(|_| load()).collect();
    let each = (open_files() - before) as f64 / 10.0;
    assert!(each <= 14.0, "each isolated plugin holds {each} descriptors in the host");

    // A soft limit with room for a few plugins more, not for forty.
    let hard = limit().rlim_max;
    let low = open_files() as u64 + 60;
    if hard <= low + 40 * 14 {
        eprintln!("skipped: the hard limit of open files ({hard}) leaves no room to raise the soft one");
        return;
    }
    let set = libc::rlimit { rlim_cur: low, rlim_max: hard };
    // SAFETY: `setrlimit` reads one `rlimit` from a local (a soft limit below the hard one).
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &set) }, 0);
    let forty: Vec<Plugin<dyn Faulty>> = (0..40).map(|_| load()).collect();
    assert_eq!(limit().rlim_cur, hard, "the soft limit was raised to the hard one");
    assert!(open_files() as u64 > low, "the plugins took more descriptors than the old soft limit");
    for (i, p) in std::iter::once(&first).chain(&ten).chain(&forty).enumerate() {
        assert_eq!(p.echo(&i.to_string()).unwrap(), i.to_string(), "plugin {i} answers");
    }
}

/// The descriptors a plugin's process is passed (its socket, rings, bells and lanes,
/// at 3 to 18) reach it each at its number whatever numbers the host has free, and
/// whatever its other threads open and close meanwhile. They are duplicated above
/// every number passed first. Duplicated just above 10, they took the free numbers
/// among the lanes' own, in whatever order another thread freed them, and a `dup2`
/// onto one lane's number could overwrite a descriptor still to be passed, or leave
/// one at its own number close-on-exec: the child found another file where a lane's
/// memory was due ("the shared memory has 0 bytes"), served fewer lanes, and a call
/// could wait on a lane nobody served (seen once in a hunt of the lanes tests, whose
/// process runs nine tests at once). This churn did not catch the old way in 300
/// rounds (the window is a few microseconds); it guards what the fix gives, and the
/// order itself is a compile-time assertion (`launch::ABOVE`).
#[test]
fn a_plugins_descriptors_reach_it_at_their_numbers_whatever_the_host_has_free() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    // The numbers below 10 taken, so that what opens next takes 10 and up.
    let mut low = Vec::new();
    while low.last().is_none_or(|f: &std::fs::File| f.as_raw_fd() < 9) {
        low.push(std::fs::File::open("/dev/null").unwrap());
    }
    // Another thread opens nine files and closes them, in another order each time.
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut turn = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut files: Vec<_> = (0..9).map(|_| std::fs::File::open("/dev/null").unwrap()).collect();
                turn += 1;
                while !files.is_empty() {
                    drop(files.swap_remove((turn * 7) % files.len()));
                    std::thread::yield_now();
                }
            }
        });
        let rounds = || {
            for round in 0..40 {
                let p = tomada_host::load_with::<dyn Faulty>(
                    cdylib("faulty"),
                    &Mode::Isolated(isolation().lanes(4).deadline(std::time::Duration::from_secs(20))),
                )
                .unwrap();
                let pid = p.process_id().unwrap();
                wait_until(&format!("round {round}: four lane threads"), || lane_threads(pid) == 4);
                std::thread::scope(|s| {
                    for t in 0..4 {
                        let p = &p;
                        s.spawn(move || {
                            for i in 0..20 {
                                let text = format!("round {round}, thread {t}, call {i}");
                                assert_eq!(p.echo(&text).unwrap(), text);
                            }
                        });
                    }
                });
                assert_eq!(p.process_id(), Some(pid), "round {round}: no call cost the process");
            }
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(rounds));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    });
    drop(low);
}
