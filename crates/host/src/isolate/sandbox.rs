//! Sandboxing an isolated plugin's process (Linux), on top of its resource limits.
//!
//! Everything here is applied in the plugin's process *before* the dynamic loader
//! opens the plugin, so its initialisers (`.init_array`, constructors of its
//! dependencies) already run inside:
//! 1. Landlock at the highest ABI this crate knows (6): the filesystem is read-only
//!    except granted paths, and with [`Sandbox::strict`] only what loading needs is
//!    readable; truncation and device `ioctl`s are checked too; TCP bind/connect are
//!    refused; signals and abstract Unix sockets cannot reach outside the sandbox.
//! 2. seccomp: a filter refusing (with `EPERM`) what Landlock does not cover — the
//!    list is in [`hardening_rules`] and `docs/isolation.md`.
//!
//! Every isolated process, sandboxed or not, gets [`contain_always`]: no `ptrace`,
//! no `process_vm_*`, no `TIOCSTI`, and (where Landlock has ABI 6) no signal to a
//! process outside it.
//!
//! A kernel without what a sandbox asks for makes the plugin fail to load with an
//! error saying what is missing, unless the host accepted less with
//! [`Sandbox::accept_weaker_kernel`]: tomada never silently runs a plugin with less
//! sandbox than it was asked for.

use std::path::{Path, PathBuf};

/// What an isolated plugin's process may not do. Opt-in per plugin; Linux only.
///
/// Any sandbox also refuses the system calls an attacker uses to get out
/// (`io_uring`, `ptrace`, namespaces, `bpf`, `TIOCSTI`, ...; see
/// `docs/isolation.md`), and keeps signals inside the sandbox.
///
/// ```
/// use tomada_host::isolate::Sandbox;
/// let sandbox = Sandbox::new().read_only_filesystem().allow_write("/tmp/plugin-cache").deny_network().deny_exec();
/// let everything = Sandbox::strict().allow_read("/usr/share/zoneinfo"); // no network, exec, or writes; few reads
/// ```
#[derive(Debug, Clone, Default)]
pub struct Sandbox {
    pub(crate) read_only: bool,
    pub(crate) writable: Vec<PathBuf>,
    pub(crate) restrict_reads: bool,
    pub(crate) readable: Vec<PathBuf>,
    pub(crate) deny_network: bool,
    pub(crate) deny_exec: bool,
    pub(crate) accept_weaker: bool,
}

/// The sandbox as it crosses to the plugin's process.
pub(crate) type Wire = (bool, Vec<Vec<u8>>, bool, Vec<Vec<u8>>, bool, bool, bool);

impl Sandbox {
    /// A sandbox that restricts nothing yet but the escape system calls.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything restricted: reads limited to what loading needs, a read-only
    /// filesystem, no network (no socket of any family), no exec.
    pub fn strict() -> Self {
        Self::new().read_only_filesystem().restrict_reads().deny_network().deny_exec()
    }

    /// Makes the whole filesystem read-only for the plugin (Landlock), except the
    /// paths given to [`Sandbox::allow_write`]; truncating, `chmod`, `chown`,
    /// `utime` and `setxattr` are refused everywhere (seccomp: Landlock does not
    /// cover the last four).
    pub fn read_only_filesystem(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Lets the plugin write under `path` (it must exist); implies
    /// [`Sandbox::read_only_filesystem`] for everything else.
    pub fn allow_write(mut self, path: impl Into<PathBuf>) -> Self {
        self.read_only = true;
        self.writable.push(path.into());
        self
    }

    /// Limits reads to what loading the plugin needs: the plugin's file, the
    /// directories its `RUNPATH` names, the system library directories
    /// (`/lib`, `/lib64`, `/usr/lib`, ...), `/etc/ld.so.cache`, `/dev/null`,
    /// `/dev/urandom`, the process's own `/proc/self` — plus the paths given to
    /// [`Sandbox::allow_read`] and [`Sandbox::allow_write`].
    pub fn restrict_reads(mut self) -> Self {
        self.restrict_reads = true;
        self
    }

    /// Lets the plugin read under `path` (it must exist); implies
    /// [`Sandbox::restrict_reads`].
    pub fn allow_read(mut self, path: impl Into<PathBuf>) -> Self {
        self.restrict_reads = true;
        self.readable.push(path.into());
        self
    }

    /// Refuses every new socket (`socket()` of any family, with `EPERM`), TCP bind
    /// and connect (Landlock), and connecting to abstract Unix sockets outside the
    /// sandbox. `socketpair` stays allowed: it reaches nothing.
    pub fn deny_network(mut self) -> Self {
        self.deny_network = true;
        self
    }

    /// Refuses `execve` and `execveat` with `EPERM`.
    pub fn deny_exec(mut self) -> Self {
        self.deny_exec = true;
        self
    }

    /// Runs the plugin even where the kernel cannot enforce every part of this
    /// sandbox (e.g. Landlock older than ABI 6 has no signal scoping, older than 3 no
    /// truncation check), enforcing what it can. Without this, such a kernel makes
    /// loading fail with what is missing.
    pub fn accept_weaker_kernel(mut self) -> Self {
        self.accept_weaker = true;
        self
    }

    #[cfg(unix)]
    pub(crate) fn to_wire(&self) -> Wire {
        use std::os::unix::ffi::OsStrExt;
        let bytes = |v: &[PathBuf]| v.iter().map(|p| p.as_os_str().as_bytes().to_vec()).collect();
        (
            self.read_only,
            bytes(&self.writable),
            self.restrict_reads,
            bytes(&self.readable),
            self.deny_network,
            self.deny_exec,
            self.accept_weaker,
        )
    }

    #[cfg(unix)]
    pub(crate) fn from_wire(w: Wire) -> Sandbox {
        use std::os::unix::ffi::OsStringExt;
        let paths = |v: Vec<Vec<u8>>| v.into_iter().map(|b| PathBuf::from(std::ffi::OsString::from_vec(b))).collect();
        let (read_only, writable, restrict_reads, readable, deny_network, deny_exec, accept_weaker) = w;
        Sandbox {
            read_only,
            writable: paths(writable),
            restrict_reads,
            readable: paths(readable),
            deny_network,
            deny_exec,
            accept_weaker,
        }
    }
}

/// Directories the dynamic loader reads system libraries from.
#[cfg(target_os = "linux")]
const SYSTEM_LIBRARIES: &[&str] = &[
    "/lib",
    "/lib32",
    "/lib64",
    "/usr/lib",
    "/usr/lib32",
    "/usr/lib64",
    "/usr/local/lib",
    "/etc/ld.so.cache",
    "/etc/ld.so.preload",
    "/dev/null",
    "/dev/zero",
    "/dev/urandom",
    "/dev/random",
    "/proc/self",
];

/// The directories the plugin's `DT_RUNPATH` / `DT_RPATH` name (`$ORIGIN`
/// resolved), where its own dependencies are found. Read with `object`, before the
/// loader runs anything.
#[cfg(target_os = "linux")]
fn runpath_dirs(plugin: &Path) -> Vec<PathBuf> {
    use object::read::elf::{Dyn, FileHeader};
    let Ok(data) = std::fs::read(plugin) else { return Vec::new() };
    let origin = plugin.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut dirs = Vec::new();
    let mut add = |s: &[u8]| {
        for entry in String::from_utf8_lossy(s).split(':') {
            let entry = entry.replace("${ORIGIN}", "$ORIGIN").replace("$ORIGIN", &origin.to_string_lossy());
            if !entry.is_empty() {
                dirs.push(PathBuf::from(entry));
            }
        }
    };
    let Ok(header) = object::elf::FileHeader64::<object::Endianness>::parse(&*data) else { return dirs };
    let Ok(endian) = header.endian() else { return dirs };
    let Ok(sections) = header.sections(endian, &*data) else { return dirs };
    let Ok(Some((entries, index))) = sections.dynamic(endian, &*data) else { return dirs };
    let Ok(strings) = sections.strings(endian, &*data, index) else { return dirs };
    for d in entries {
        let tag = d.tag(endian);
        if (tag == object::elf::DT_RUNPATH || tag == object::elf::DT_RPATH)
            && let Ok(s) = d.string(endian, strings)
        {
            add(s);
        }
    }
    dirs
}

/// The system calls any sandbox refuses: ways out that no plugin needs.
#[cfg(target_os = "linux")]
fn hardening_rules() -> Result<std::collections::BTreeMap<i64, Vec<seccompiler::SeccompRule>>, String> {
    use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};
    let mut rules = always_rules()?;
    for call in [
        // io_uring does network, file and process work without the system calls
        // seccomp sees (issue 8: IORING_OP_SOCKET + IORING_OP_CONNECT).
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        // Namespaces: a new user namespace brings capabilities inside it.
        libc::SYS_unshare,
        libc::SYS_setns,
        // Kernel attack surface and global state no plugin needs.
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
        libc::SYS_fsconfig,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
        libc::SYS_open_by_handle_at,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_syslog,
        libc::SYS_sethostname,
        libc::SYS_setdomainname,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_pidfd_getfd,
        libc::SYS_kcmp,
    ] {
        rules.insert(call, vec![]);
    }
    // `clone` with a namespace flag (clone3 is refused as a whole, see `apply`).
    let ns = [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWCGROUP,
        0x80, // CLONE_NEWTIME (not in libc for every target)
    ];
    let clone = ns
        .iter()
        .map(|&f| {
            SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(f as u64), f as u64)
                .and_then(|c| SeccompRule::new(vec![c]))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    rules.insert(libc::SYS_clone, clone);
    Ok(rules)
}

/// What every isolated process refuses, sandboxed or not: reaching into the host
/// (`ptrace`, `process_vm_*`), typing into a terminal (`TIOCSTI`, `TIOCLINUX`), and
/// changing its parent-death signal.
#[cfg(target_os = "linux")]
fn always_rules() -> Result<std::collections::BTreeMap<i64, Vec<seccompiler::SeccompRule>>, String> {
    use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};
    let arg_is = |arg: u8, v: u64| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, v)
            .and_then(|c| SeccompRule::new(vec![c]))
            .map_err(|e| e.to_string())
    };
    let mut rules = std::collections::BTreeMap::new();
    for call in [libc::SYS_ptrace, libc::SYS_process_vm_readv, libc::SYS_process_vm_writev] {
        rules.insert(call, vec![]);
    }
    rules.insert(libc::SYS_ioctl, vec![arg_is(1, libc::TIOCSTI)?, arg_is(1, libc::TIOCLINUX)?]);
    rules.insert(libc::SYS_prctl, vec![arg_is(0, libc::PR_SET_PDEATHSIG as u64)?]);
    Ok(rules)
}

/// Installs a filter that answers `errno` to each matching call.
#[cfg(target_os = "linux")]
fn install(rules: std::collections::BTreeMap<i64, Vec<seccompiler::SeccompRule>>, errno: i32) -> Result<(), String> {
    use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};
    let fail = |e: &dyn std::fmt::Display| format!("cannot apply the system-call sandbox (seccomp): {e}");
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| fail(&e))?;
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(errno as u32), arch)
        .map_err(|e| fail(&e))?;
    let program: BpfProgram = filter.try_into().map_err(|e: seccompiler::BackendError| fail(&e))?;
    // Every thread (the runner has one at this point; this costs nothing more).
    seccompiler::apply_filter_all_threads(&program).map_err(|e| fail(&e))
}

/// What every isolated plugin's process gets, sandbox or not (before loading):
/// the [`always_rules`] filter, and a Landlock domain that refuses only creating
/// block devices but, being a domain, keeps `ptrace` (and `/proc/<pid>/mem`) and,
/// on ABI 6, signals from reaching any process outside it. On a kernel without
/// Landlock, the seccomp part still holds.
#[cfg(target_os = "linux")]
pub(crate) fn contain_always() -> Result<(), String> {
    use landlock::{AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, Scope};
    install(always_rules()?, libc::EPERM)?;
    let _ = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::MakeBlock)
        .and_then(|r| r.scope(Scope::Signal))
        .and_then(|r| r.create())
        .and_then(|r| r.restrict_self());
    Ok(())
}

/// Applies `sandbox` to this process; `plugin` is the file about to be loaded.
#[cfg(target_os = "linux")]
pub(crate) fn apply(sandbox: &Sandbox, plugin: &Path) -> Result<(), String> {
    landlock(sandbox, plugin)?;
    let mut rules = hardening_rules()?;
    if sandbox.deny_network {
        // Every family: AF_UNIX reaches the host's listeners, AF_NETLINK the
        // kernel, AF_PACKET and AF_VSOCK the outside.
        rules.insert(libc::SYS_socket, vec![]);
    }
    if sandbox.deny_exec {
        rules.insert(libc::SYS_execve, vec![]);
        rules.insert(libc::SYS_execveat, vec![]);
    }
    if sandbox.read_only {
        // Landlock (any ABI) does not see metadata changes: refused everywhere.
        for call in [
            libc::SYS_chmod,
            libc::SYS_fchmod,
            libc::SYS_fchmodat,
            libc::SYS_fchmodat2,
            libc::SYS_chown,
            libc::SYS_fchown,
            libc::SYS_lchown,
            libc::SYS_fchownat,
            libc::SYS_utime,
            libc::SYS_utimes,
            libc::SYS_futimesat,
            libc::SYS_utimensat,
            libc::SYS_setxattr,
            libc::SYS_lsetxattr,
            libc::SYS_fsetxattr,
            libc::SYS_removexattr,
            libc::SYS_lremovexattr,
            libc::SYS_fremovexattr,
            463, // setxattrat (Linux 6.13)
            466, // removexattrat (Linux 6.13)
        ] {
            rules.insert(call, vec![]);
        }
    }
    install(rules, libc::EPERM)?;
    // clone3's flags sit behind a pointer seccomp cannot read: refuse it as
    // unimplemented, so libc falls back to `clone`, whose flags are checked.
    install(std::iter::once((libc::SYS_clone3, vec![])).collect(), libc::ENOSYS)
}

#[cfg(target_os = "linux")]
fn landlock(sandbox: &Sandbox, plugin: &Path) -> Result<(), String> {
    use landlock::{
        ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr,
        RulesetStatus, Scope, path_beneath_rules,
    };
    let abi = ABI::V6;
    let level = if sandbox.accept_weaker { CompatLevel::BestEffort } else { CompatLevel::HardRequirement };
    let read = AccessFs::from_read(abi);
    let all = AccessFs::from_all(abi);
    let mut handled = AccessFs::IoctlDev | AccessFs::MakeBlock | AccessFs::MakeChar;
    if sandbox.read_only {
        handled |= all & !read;
    }
    if sandbox.restrict_reads {
        handled |= read;
    }
    let mut readable: Vec<PathBuf> = Vec::new();
    if sandbox.restrict_reads {
        readable.push(plugin.to_path_buf());
        readable.extend(runpath_dirs(plugin));
        readable.extend(SYSTEM_LIBRARIES.iter().map(PathBuf::from));
        readable.extend(sandbox.readable.iter().cloned());
    } else {
        readable.push("/".into());
    }
    let created = Ruleset::default()
        .set_compatibility(level)
        .handle_access(handled)
        .and_then(|r| if sandbox.deny_network { r.handle_access(AccessNet::from_all(abi)) } else { Ok(r) })
        .and_then(|r| r.scope(Scope::from_all(abi)))
        .and_then(|r| r.create());
    let reason = |e: &dyn std::fmt::Display| {
        if kernel_abi() >= 6 {
            return format!("cannot apply the filesystem sandbox (Landlock): {e}");
        }
        format!(
            "this kernel cannot enforce the sandbox (Landlock ABI {} here, ABI 6 — Linux 6.12 — needed: {e}); \
             use a newer kernel with Landlock enabled (lsm=landlock,...), or accept less with \
             `Sandbox::accept_weaker_kernel()`",
            kernel_abi()
        )
    };
    let write = all & handled & !AccessFs::IoctlDev;
    let mut grants: Vec<(Vec<PathBuf>, landlock::BitFlags<AccessFs>)> = vec![(readable, read & handled)];
    if sandbox.read_only {
        // `/dev/null` stays writable: writing to it reaches nothing.
        grants.push((vec!["/dev/null".into()], write));
        grants.push((sandbox.writable.clone(), write));
    }
    let mut ruleset = created.map_err(|e| reason(&e))?;
    for (paths, access) in grants {
        if !access.is_empty() {
            ruleset = ruleset.add_rules(path_beneath_rules(&paths, access)).map_err(|e| reason(&e))?;
        }
    }
    let status = ruleset.restrict_self().map_err(|e| reason(&e))?;
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok(()),
        _ if sandbox.accept_weaker && status.ruleset != RulesetStatus::NotEnforced => Ok(()),
        other => Err(reason(&format!("status {other:?}"))),
    }
}

/// The Landlock ABI version this kernel offers (0: none).
#[cfg(target_os = "linux")]
pub(crate) fn kernel_abi() -> i64 {
    // SAFETY: `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`
    // only returns a number; it takes no memory.
    let v = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, std::ptr::null::<u8>(), 0usize, 1u32) };
    v.max(0)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn apply(_: &Sandbox, _: &Path) -> Result<(), String> {
    Err("sandboxing is only available on Linux".to_owned())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn contain_always() -> Result<(), String> {
    Ok(())
}
