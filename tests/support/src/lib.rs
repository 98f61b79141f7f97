//! Builds fixture plugin crates with cargo, once per package and profile in a test
//! process, and finds their cdylibs from cargo's JSON messages, so no test guesses
//! `lib*.so` / `.dylib` / `.dll`.
//!
//! Fixtures build into `target/fixtures*`, not the `target/` that `cargo test` is
//! using, so the nested cargo never waits on the outer one's lock. Tests built for
//! another target (`cargo test --target ...`) build their fixtures for it too.
//!
//! Where a test cannot run cargo — a Windows test binary under Wine, which loses a
//! Unix child's exit status — [`PREBUILT_VAR`] names a directory of fixtures built
//! beforehand (`.ci/windows` does this).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root exists")
}

/// How to build a fixture.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Build {
    /// The package to build.
    pub package: String,
    /// `--release`?
    pub release: bool,
    /// A rustup toolchain (`nightly`), or `None` for the one running the tests.
    pub toolchain: Option<String>,
    /// Extra `--config` values, e.g. `profile.dev.panic="abort"`.
    pub config: Vec<String>,
}

impl Build {
    /// A debug build of `package` with the current toolchain.
    pub fn new(package: &str) -> Self {
        Build { package: package.into(), release: false, toolchain: None, config: Vec::new() }
    }

    /// A release build.
    pub fn release(mut self) -> Self {
        self.release = true;
        self
    }

    /// Builds with another rustup toolchain.
    pub fn toolchain(mut self, toolchain: &str) -> Self {
        self.toolchain = Some(toolchain.into());
        self
    }

    /// Adds a `--config KEY=VALUE`.
    pub fn config(mut self, value: &str) -> Self {
        self.config.push(value.into());
        self
    }

    fn target_dir(&self) -> PathBuf {
        let mut name = String::from("fixtures");
        if let Some(t) = &self.toolchain {
            name.push('-');
            name.push_str(t);
        }
        if !self.config.is_empty() {
            name.push_str("-custom");
            for c in &self.config {
                name.push('-');
                name.extend(c.chars().map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '_' }));
            }
        }
        workspace_root().join("target").join(name)
    }

    /// Builds (once per process) and returns the path of the cdylib.
    ///
    /// # Panics
    /// If the build fails or makes no cdylib; the message has cargo's output.
    pub fn cdylib(&self) -> PathBuf {
        self.try_cdylib().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Builds (once per process) and returns the path of the cdylib, or why not.
    pub fn try_cdylib(&self) -> Result<PathBuf, String> {
        static CACHE: OnceLock<Mutex<HashMap<Build, Result<PathBuf, String>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        // Holding the lock while building serialises fixture builds, which cargo's own
        // lock would do anyway.
        let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.entry(self.clone()).or_insert_with(|| self.run()).clone()
    }

    fn run(&self) -> Result<PathBuf, String> {
        if let Some(dir) = prebuilt_dir() {
            return self.prebuilt(&dir);
        }
        let mut cmd = match &self.toolchain {
            Some(t) => {
                let mut c = Command::new("rustup");
                c.args(["run", t, "cargo"]);
                // Let rustup pick that toolchain's cargo and rustc, not ours.
                for var in ["RUSTUP_TOOLCHAIN", "RUSTC", "RUSTDOC", "CARGO", "RUSTC_WRAPPER", "RUSTC_WORKSPACE_WRAPPER"]
                {
                    c.env_remove(var);
                }
                c
            }
            None => Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())),
        };
        cmd.current_dir(workspace_root())
            .args(["build", "--quiet", "--message-format=json-render-diagnostics", "-p", &self.package])
            .arg("--target-dir")
            .arg(self.target_dir());
        if self.release {
            cmd.arg("--release");
        }
        if TARGET != HOST {
            cmd.args(["--target", TARGET]);
        }
        for c in &self.config {
            cmd.args(["--config", c]);
        }
        let out = cmd.output().map_err(|e| format!("cannot run cargo for `{}`: {e}", self.package))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "building fixture `{}` ({:?}) failed:\n{}\n{}",
                self.package,
                self,
                String::from_utf8_lossy(&out.stderr),
                stdout
            ));
        }
        for line in stdout.lines() {
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if msg["reason"] != "compiler-artifact" {
                continue;
            }
            let is_cdylib = msg["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "cdylib"));
            let name = msg["target"]["name"].as_str().unwrap_or_default().replace('-', "_");
            if !is_cdylib || name != self.package.replace('-', "_") {
                continue;
            }
            let files = msg["filenames"].as_array().cloned().unwrap_or_default();
            for f in files.iter().filter_map(|f| f.as_str()) {
                if [".so", ".dylib", ".dll"].iter().any(|ext| f.ends_with(ext)) {
                    return Ok(PathBuf::from(f));
                }
            }
        }
        Err(format!("cargo built `{}` but reported no cdylib", self.package))
    }
}

impl Build {
    /// The fixture from [`PREBUILT_VAR`]'s directory: default builds only.
    fn prebuilt(&self, dir: &Path) -> Result<PathBuf, String> {
        if self.release || self.toolchain.is_some() || !self.config.is_empty() {
            return Err(format!(
                "fixture `{}` ({self:?}) is not prebuilt: {PREBUILT_VAR} holds only default debug builds",
                self.package
            ));
        }
        let name = self.package.replace('-', "_");
        let file = dir.join(format!("{}{name}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
        if file.is_file() {
            Ok(file)
        } else {
            Err(format!(
                "fixture `{}` is not in {PREBUILT_VAR} (`{}`); build it first with `cargo build --target {TARGET} -p {}`",
                self.package,
                dir.display(),
                self.package
            ))
        }
    }
}

/// The target these tests were built for, and the one cargo runs on.
const TARGET: &str = env!("TOMADA_SUPPORT_TARGET");
const HOST: &str = env!("TOMADA_SUPPORT_HOST");

/// The environment variable naming a directory of fixtures (and binaries) built
/// beforehand for the tests' target: when set, no test runs cargo.
pub const PREBUILT_VAR: &str = "TOMADA_PREBUILT_FIXTURES";

fn prebuilt_dir() -> Option<PathBuf> {
    std::env::var_os(PREBUILT_VAR).filter(|d| !d.is_empty()).map(PathBuf::from)
}

/// The prebuilt executable `name` (e.g. `host`) from [`PREBUILT_VAR`]'s directory,
/// if that variable is set.
pub fn prebuilt_exe(name: &str) -> Option<PathBuf> {
    prebuilt_dir().map(|d| d.join(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
}

/// The debug cdylib of fixture `package`, built with the current toolchain.
pub fn cdylib(package: &str) -> PathBuf {
    Build::new(package).cdylib()
}

/// Copies `src` to a fresh file in `dir` named `name` and returns its path.
pub fn copy_to(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let dst = dir.join(name);
    std::fs::copy(src, &dst).unwrap_or_else(|e| panic!("copy {} -> {}: {e}", src.display(), dst.display()));
    dst
}

/// The byte offset of the first occurrence of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The system's `libm.so.6`: a real shared library that is not a tomada plugin.
///
/// # Panics
/// If none is found in the usual places.
pub fn system_libm() -> PathBuf {
    [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib/aarch64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
        "/usr/lib64/libm.so.6",
        "/usr/lib/libm.so.6",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .expect("these tests need the system's libm.so.6")
}

/// How long a test waits for something that must happen before it calls it a hang.
///
/// A guard against waiting forever, never a measure of speed: a test asserts *what*
/// happened, not how soon. It is generous because a busy 2-core machine (a CPU hog
/// beside `cargo test --workspace`) can take many seconds for what an idle one does
/// at once.
pub const HANG_GUARD: Duration = Duration::from_secs(120);

/// Waits until `done()` holds, looking again every few milliseconds.
///
/// For events a test cannot block on (a process that ends, a thread that exits, a
/// message served when the host next reads).
///
/// # Panics
/// If `done()` still does not hold after [`HANG_GUARD`]: the message names `what`.
#[track_caller]
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + HANG_GUARD;
    let mut pause = Duration::from_millis(1);
    while !done() {
        assert!(Instant::now() < until, "hung: {what} did not happen within {HANG_GUARD:?}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

/// Runs `f` on a thread of its own and returns what it returns.
///
/// # Panics
/// If `f` panics, or does not return within [`HANG_GUARD`] (the message names
/// `what`; the thread is left to finish by itself).
#[track_caller]
pub fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(HANG_GUARD) {
        Ok(value) => {
            let _ = thread.join();
            value
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            let panic = thread.join().expect_err("the thread ended without a value");
            std::panic::resume_unwind(panic)
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("hung: {what} did not return within {HANG_GUARD:?}"),
    }
}

/// The threads serving lanes in the process `pid` and its descendants (the plugin's
/// process is the last of a chain: see `isolate::contain`).
#[cfg(target_os = "linux")]
pub fn lane_threads(pid: u32) -> usize {
    let here = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|name| name.starts_with("tomada-lane-"))
                .count()
        })
        .unwrap_or(0);
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    here + children.split_whitespace().filter_map(|c| c.parse().ok()).map(lane_threads).sum::<usize>()
}

/// How many distinct sealed copies (tomada's `memfd:tomada:NAME` images of a loaded
/// plugin) named `name` this process has mapped: one per version still loaded.
#[cfg(target_os = "linux")]
pub fn mapped_copies(name: &str) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let wanted = format!("/memfd:tomada:{name}");
    let mut inodes: Vec<&str> = maps
        .lines()
        .filter(|l| l.split_whitespace().nth(5).is_some_and(|p| p == wanted))
        .filter_map(|l| l.split_whitespace().nth(4))
        .collect();
    inodes.sort_unstable();
    inodes.dedup();
    inodes.len()
}

/// How many distinct sealed copies named `name` this process holds open (its
/// descriptors naming `memfd:tomada:NAME`, by inode): an isolated plugin's host holds
/// the copy its children load.
#[cfg(target_os = "linux")]
pub fn held_copies(name: &str) -> usize {
    use std::os::unix::fs::MetadataExt;
    let wanted = format!("/memfd:tomada:{name} (deleted)");
    let mut inodes: Vec<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == wanted.as_str()))
        .filter_map(|e| std::fs::metadata(e.path()).ok().map(|m| m.ino()))
        .collect();
    inodes.sort_unstable();
    inodes.dedup();
    inodes.len()
}

/// Waits until the change time of `path` is more than `age` in the past (no sooner:
/// a wait for a condition, not a sleep of a guessed length).
pub fn wait_older(path: &Path, age: std::time::Duration) {
    use std::time::{Duration, SystemTime};
    loop {
        #[cfg(unix)]
        let changed = {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(path).unwrap();
            SystemTime::UNIX_EPOCH + Duration::new(m.ctime() as u64, m.ctime_nsec() as u32)
        };
        #[cfg(not(unix))]
        let changed = std::fs::metadata(path).unwrap().modified().unwrap();
        match SystemTime::now().duration_since(changed) {
            Ok(d) if d > age => return,
            Ok(d) => std::thread::sleep(age - d + Duration::from_millis(20)),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Sets or clears the immutable flag of `path` (`FS_IOC_SETFLAGS`, as `chattr +i`/`-i`
/// does); needs `CAP_LINUX_IMMUTABLE` and a file system with the flag (ext4, xfs,
/// btrfs, tmpfs since Linux 6.0). An immutable file cannot be deleted: clear the flag
/// before its directory goes. `Unsupported` elsewhere than Linux.
///
/// # Errors
/// The `ioctl`'s, e.g. `EPERM` without the capability, `ENOTTY`/`EOPNOTSUPP` on a
/// file system without the flag.
pub fn set_immutable(path: &Path, on: bool) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        /// `FS_IMMUTABLE_FL` of linux/fs.h (not in the `libc` crate).
        const FS_IMMUTABLE_FL: libc::c_long = 0x10;
        let file = std::fs::File::open(path)?;
        let mut flags: libc::c_long = 0;
        // SAFETY: `FS_IOC_GETFLAGS` writes the flags (an int, in a long's room) into
        // `flags`, which outlives the call.
        if unsafe { libc::ioctl(file.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        flags = if on { flags | FS_IMMUTABLE_FL } else { flags & !FS_IMMUTABLE_FL };
        // SAFETY: `FS_IOC_SETFLAGS` reads the flags from `flags`.
        if unsafe { libc::ioctl(file.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (path, on);
        Err(std::io::ErrorKind::Unsupported.into())
    }
}
