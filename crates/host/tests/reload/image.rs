//! The loaded image is a sealed private copy: what runs is what was checked, whatever
//! later happens to the file.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use living_api::Living;
use tomada_host::Loader;
use tomada_host::isolate::{Isolation, Runner};
use tomada_test_support::{Build, cdylib, copy_to, wait_until};

/// Isolation with the `tomada-runner` binary (the test harness cannot serve as one).
pub fn isolation() -> Isolation {
    Isolation::new().runner(Runner::Path(env!("CARGO_BIN_EXE_tomada-runner").into()))
}

/// A build of the living fixture as `version` (`1.0.0` is the plain build).
pub fn living(version: &str) -> PathBuf {
    if version == "1.0.0" {
        return cdylib("living");
    }
    Build::new("living").config(&format!("env.LIVING_VERSION=\"{version}\"")).cdylib()
}

/// `cp src dst`: rewrites `dst`'s inode in place (truncate, then write), as cp and
/// most build tools do.
pub fn cp_over(src: &Path, dst: &Path) {
    let before = std::fs::metadata(dst).map(|m| m.ino()).ok();
    std::fs::copy(src, dst).unwrap();
    if let Some(ino) = before {
        assert_eq!(std::fs::metadata(dst).unwrap().ino(), ino, "cp rewrote the same inode");
    }
}

/// `mv`-over: a new inode renamed over `dst`.
pub fn mv_over(src: &Path, dst: &Path) {
    let tmp = dst.with_extension("new");
    std::fs::copy(src, &tmp).unwrap();
    std::fs::rename(&tmp, dst).unwrap();
}

/// Whether process `pid` is gone (or a zombie about to be reaped).
pub fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn loaders() -> [(&'static str, Loader); 2] {
    [("in-process", Loader::new()), ("isolated", Loader::new().isolated(isolation()))]
}

/// The crash: a plugin loaded, an object it made held, then its file
/// rewritten in place by `cp` of another build, replaced by `mv`, and deleted, with
/// calls on the old plugin and its object and a fresh load after each. Before the
/// sealed copy, in-process, the old library's pages *were* the file's (the loader
/// maps it `MAP_PRIVATE`, which shares unwritten pages with the file; see
/// `a_private_mapping_of_the_file_sees_it_change`), so the next call or `dlsym` ran
/// the new build's bytes at the old build's addresses (SIGSEGV); isolated, the old
/// child's next call failed.
#[test]
fn overwritten_renamed_over_and_deleted_files_change_nothing_loaded() {
    let (v1, v2) = (living("1.0.0"), living("2.0.0"));
    for (mode, loader) in loaders() {
        let dir = tempfile::tempdir().unwrap();
        let path = copy_to(&v1, dir.path(), "living.so");
        let first = loader.load::<dyn Living>(&path).unwrap();
        let counter = first.counter(10).unwrap();
        assert_eq!(counter.next().unwrap(), 10, "{mode}");

        cp_over(&v2, &path);
        assert_eq!(first.version().unwrap(), "1.0.0", "{mode}: the old plugin after cp");
        assert_eq!(counter.next().unwrap(), 11, "{mode}: its object after cp");
        assert_eq!(counter.version().unwrap(), "1.0.0", "{mode}");
        let second = loader.load::<dyn Living>(&path).unwrap();
        assert_eq!(second.version().unwrap(), "2.0.0", "{mode}: a reload after cp");
        let counter2 = second.counter(0).unwrap();

        mv_over(&v1, &path);
        assert_eq!(first.version().unwrap(), "1.0.0", "{mode}: after mv");
        assert_eq!(second.version().unwrap(), "2.0.0", "{mode}: after mv");
        assert_eq!(counter.next().unwrap(), 12, "{mode}");
        assert_eq!(counter2.version().unwrap(), "2.0.0", "{mode}");
        let third = loader.load::<dyn Living>(&path).unwrap();
        assert_eq!(third.version().unwrap(), "1.0.0", "{mode}: a reload after mv");

        std::fs::remove_file(&path).unwrap();
        assert_eq!(first.version().unwrap(), "1.0.0", "{mode}: after rm");
        assert_eq!(counter.next().unwrap(), 13, "{mode}: after rm");
        assert_eq!(counter2.next().unwrap(), 0, "{mode}: after rm");
        drop((first, second, third));
        // The objects outlive their plugins (and keep their libraries or processes).
        assert_eq!(counter.next().unwrap(), 14, "{mode}: after the plugins went");
        assert_eq!(counter2.next().unwrap(), 1, "{mode}");
        // The file back, as a new build would come: it loads.
        cp_over(&v2, &path);
        let again = loader.load::<dyn Living>(&path).unwrap();
        assert_eq!(again.version().unwrap(), "2.0.0", "{mode}");
    }
}

/// In-process, the library is mapped from a private copy, not from the file: its
/// mappings in `/proc/self/maps` are the sealed `memfd`'s, and none is the file's.
#[test]
fn the_loaded_image_is_a_sealed_copy_not_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_to(&living("1.0.0"), dir.path(), "sealed-image.so");
    let ino = std::fs::metadata(&path).unwrap().ino();
    let plugin = Loader::new().load::<dyn Living>(&path).unwrap();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let inode_of = |line: &str| line.split_whitespace().nth(4).and_then(|i| i.parse::<u64>().ok());
    assert!(!maps.lines().any(|l| inode_of(l) == Some(ino)), "the file itself is mapped:\n{maps}");
    assert!(maps.contains("/memfd:tomada:sealed-image.so"), "no sealed copy mapped:\n{maps}");
    assert_eq!(plugin.version().unwrap(), "1.0.0");
    drop(plugin);
}

/// The negative control: a private mapping of the file — what the dynamic loader
/// makes of a library it opens by path or by the file's own descriptor — changes
/// when the file is rewritten in place. (Only read here: running such pages is the
/// crash the sealed copy prevents.)
#[test]
fn a_private_mapping_of_the_file_sees_it_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_to(&living("1.0.0"), dir.path(), "mapped.so");
    let other = cdylib("greeter");
    let file = std::fs::File::open(&path).unwrap();
    let len = 4096;
    // SAFETY: a read-only private mapping of the first page of a file we opened.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            std::os::fd::AsRawFd::as_raw_fd(&file),
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED);
    // SAFETY: the mapping is `len` readable bytes, and the file stays at least that long.
    let read = || unsafe { std::slice::from_raw_parts(page.cast::<u8>(), len) }.to_vec();
    let before = read();
    cp_over(&other, &path);
    let after = read();
    let new_first_page = &std::fs::read(&other).unwrap()[..len];
    assert_ne!(before, after, "the mapping did not change");
    assert_eq!(after, new_first_page, "the mapping shows the new file");
    // SAFETY: unmaps the mapping made above, read no more.
    unsafe { libc::munmap(page, len) };
}

/// The same bytes are checked and loaded: a file changed between the checks and the
/// load cannot get in. With the sealed copy the whole load reads one immutable
/// snapshot; here the file is rewritten right after it is opened and inspected (the
/// `Inspected` stage) and before the load, and what loads is what was inspected.
#[test]
fn a_file_changed_between_inspection_and_load_loads_what_was_inspected() {
    let (v1, v2) = (living("1.0.0"), living("2.0.0"));
    for (mode, loader) in loaders() {
        let dir = tempfile::tempdir().unwrap();
        let path = copy_to(&v1, dir.path(), "between.so");
        let inspected = loader.inspect(&path).unwrap();
        assert_eq!(inspected.inspection().manifest.info.version, "1.0.0");
        cp_over(&v2, &path);
        let plugin = inspected.check::<dyn Living>().unwrap().start().unwrap();
        assert_eq!(plugin.version().unwrap(), "1.0.0", "{mode}");
    }
}

/// With its debug info left out of the sealed copy, a test-built plugin (megabytes
/// of DWARF) loads and answers in both modes: the isolated process takes the host's
/// copy, holes and all, as it is.
#[test]
fn a_plugin_without_its_debug_info_in_the_copy_loads_in_both_modes() {
    let v1 = living("1.0.0");
    for (mode, loader) in loaders() {
        let dir = tempfile::tempdir().unwrap();
        let path = copy_to(&v1, dir.path(), "lean.so");
        let inspected = loader.debug_info(false).inspect(&path).unwrap();
        assert!(inspected.sealed_copy(), "{mode}");
        let plugin = inspected.check::<dyn Living>().unwrap().start().unwrap();
        assert_eq!(plugin.version().unwrap(), "1.0.0", "{mode}");
    }
}

/// gdb names a plugin's frames: the library's name in the link map,
/// `/proc/<pid>/fd/N`, is one gdb can open from its own process (with
/// `/proc/self/fd/N`, gdb opened its own descriptor N, a pipe, and hung). A thread
/// of this process waits inside a plugin call while `gdb -batch` attaches and prints
/// every thread's backtrace; the plugin's function must be in it — with its source
/// file and line from the debug info of the (test-built) plugin, and, with the debug
/// info left out of the sealed copy (`Loader::debug_info(false)`), named all the same
/// from the symbol table, without them.
#[test]
fn gdb_names_a_plugin_frame() {
    if Command::new("gdb").arg("--version").stdout(Stdio::null()).status().is_err() {
        panic!("gdb is not installed (.ci/run installs it)");
    }
    let frame = |bt: &str| bt.lines().find(|l| l.contains("living_wait_for")).map(str::to_owned);
    let bt = gdb_backtrace(Loader::new());
    assert!(
        bt.contains("living_wait_for") && bt.contains("living::Alive"),
        "the plugin's frames are not named in gdb's backtrace:\n{bt}"
    );
    let line = frame(&bt).unwrap();
    assert!(line.contains("living/src/lib.rs:"), "file and line from the debug info: {line}");
    let bt = gdb_backtrace(Loader::new().debug_info(false));
    assert!(
        bt.contains("living_wait_for") && bt.contains("living::Alive"),
        "without the debug info, the plugin's frames are not named in gdb's backtrace:\n{bt}"
    );
    let line = frame(&bt).unwrap();
    assert!(!line.contains("living/src/lib.rs:"), "the debug info is not in the copy: {line}");
}

fn gdb_backtrace(loader: Loader) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_to(&living("1.0.0"), dir.path(), "debugged.so");
    let plugin = std::sync::Arc::new(loader.load::<dyn Living>(&path).unwrap());
    let flag = dir.path().join("go");
    let flag_str = flag.to_str().unwrap().to_owned();
    let caller = {
        let plugin = plugin.clone();
        std::thread::spawn(move || plugin.wait_for(&flag_str).unwrap())
    };
    let entered = dir.path().join("go.in");
    wait_until("the call entering the plugin", || entered.exists());
    // SAFETY: lets any process of this user trace this one (Yama's `ptrace_scope = 1`
    // otherwise allows only ancestors); a test process only.
    unsafe { libc::prctl(libc::PR_SET_PTRACER, libc::PR_SET_PTRACER_ANY, 0, 0, 0) };
    let out = dir.path().join("gdb.out");
    // Waited for below, or killed and waited for on the hang guard's path.
    #[allow(clippy::zombie_processes)]
    let mut gdb = Command::new("gdb")
        .args(["-batch", "-nx", "-p", &std::process::id().to_string(), "-ex", "thread apply all bt"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A hang guard, not a timing assertion: gdb that hangs fails the test instead of
    // hanging it (and the kernel detaches it from this process when it is killed).
    let mut status = None;
    let guard = std::time::Instant::now() + tomada_test_support::HANG_GUARD;
    while status.is_none() {
        status = gdb.try_wait().unwrap();
        if status.is_none() && std::time::Instant::now() > guard {
            let _ = gdb.kill();
            let _ = gdb.wait();
            std::fs::write(&flag, b"").unwrap();
            panic!("gdb hung on this process: {}", std::fs::read_to_string(&out).unwrap_or_default());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::write(&flag, b"").unwrap();
    assert!(caller.join().unwrap(), "the call saw the flag");
    std::fs::read_to_string(&out).unwrap()
}
