//! A host with many isolated plugins under a low soft limit of open descriptors (1,024
//! is common): a start that runs out raises the soft limit to the hard one and goes
//! on, and each plugin holds no more descriptors in the host than its channel needs.
//!
//! A test binary of its own with a single test: the limit and the count of open
//! descriptors are the whole process's, which other tests running beside it would move.

#![allow(missing_docs)]
#![cfg(target_os = "linux")]

use fault_api::Faulty;
use tomada_host::Plugin;
use tomada_host::isolate::{Isolation, Mode, Runner};
use tomada_test_support::cdylib;

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
    let isolation = Isolation::new().runner(Runner::Path(env!("CARGO_BIN_EXE_tomada-runner").into()));
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
