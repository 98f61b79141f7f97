//! Sandboxing an isolated plugin's process (Linux), on top of its resource limits.
//!
//! Everything here is applied in the plugin's process *before* the dynamic loader
//! opens the plugin, so its initialisers (`.init_array`, constructors of its
//! dependencies) already run inside:
//! 1. Landlock at the highest ABI this crate knows (6): the filesystem is read-only
//!    except granted paths, and with [`Sandbox::strict`] only what loading needs is
//!    readable; truncation and device `ioctl`s are checked too; TCP bind/connect are
//!    refused; signals and abstract Unix sockets cannot reach outside the sandbox.
//! 2. seccomp: with [`Sandbox::strict`], an allow-list ([`allowed_rules`]): every
//!    system call it does not name is refused with `EPERM`, one added to Linux later
//!    included; with other sandboxes, a deny-list ([`hardening_rules`]) of what
//!    Landlock does not cover. Every filter checks the architecture (another one, as
//!    `int 0x80` is, kills the process) and refuses x32 numbers. The host compiles the
//!    filters ([`filters`], as a binary search on the call's number: see [`compile`])
//!    and the runner installs them as sent, after checking them ([`Filters`]).
//!
//! Before both, in the worker (see [`drop_privileges`]): root in the sandbox is not
//! root. On a root host the worker becomes an unprivileged uid and gid (65534, or
//! [`Sandbox::run_as`]) with no supplementary group; on any host it drops every
//! capability (bounding, ambient, inheritable, permitted, effective), locks the
//! securebits so none comes back (`SECBIT_NOROOT`, ...), sets `no_new_privs`, and caps
//! the processes of its uid (`RLIMIT_NPROC`, [`Sandbox::max_processes`]) with every
//! limit's hard value at its soft one, so nothing is raised from inside.
//!
//! Every isolated process, sandboxed or not, gets [`contain_always`]: no `ptrace`,
//! no `process_vm_*`, no `TIOCSTI`, and (where Landlock has ABI 6) no signal to a
//! process outside it.
//!
//! A kernel without what a sandbox asks for makes the plugin fail to load with an
//! error saying what is missing, unless the host accepted less with
//! [`Sandbox::accept_weaker_kernel`]: tomada never silently runs a plugin with less
//! sandbox than it was asked for.

use std::path::PathBuf;

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
    pub(crate) allow_list: bool,
    pub(crate) run_as: Option<(u32, u32)>,
    pub(crate) max_processes: Option<u64>,
}

/// The sandbox as it crosses to the plugin's process.
pub(crate) type Wire =
    (bool, Vec<Vec<u8>>, bool, Vec<Vec<u8>>, bool, bool, bool, bool, Option<(u32, u32)>, Option<u64>);

/// The uid and gid a sandboxed plugin runs as on a root host, unless
/// [`Sandbox::run_as`] says otherwise: `nobody`'s.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // (the sandbox is Linux's)
pub(crate) const UNPRIVILEGED_ID: u32 = 65534;

/// How many processes (threads included) a sandboxed plugin's uid may have, unless
/// [`Sandbox::max_processes`] says otherwise.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // (the sandbox is Linux's)
pub(crate) const DEFAULT_MAX_PROCESSES: u64 = 256;

impl Sandbox {
    /// A sandbox that restricts nothing yet but the escape system calls.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything restricted: reads limited to what loading needs, a read-only
    /// filesystem, no network (no socket of any family), no exec, and only the
    /// system calls a plugin using std, threads, allocation and time needs (an
    /// allow-list: see [`Sandbox::only_needed_system_calls`]).
    pub fn strict() -> Self {
        Self::new().read_only_filesystem().restrict_reads().deny_network().deny_exec().only_needed_system_calls()
    }

    /// Refuses (with `EPERM`) every system call but those the runner and a plugin
    /// using std, threads, allocation, time and files need — a system call added to
    /// Linux later included. Without it, the filter refuses a list of known ways out
    /// and allows the rest.
    pub fn only_needed_system_calls(mut self) -> Self {
        self.allow_list = true;
        self
    }

    /// On a root host, the uid and gid the plugin's process runs as (default 65534,
    /// `nobody`; never 0). Give each plugin its own to keep their process counts
    /// ([`Sandbox::max_processes`] counts per uid) and files apart; paths granted with
    /// [`Sandbox::allow_read`] / [`Sandbox::allow_write`] must also be readable /
    /// writable by it. Ignored on a non-root host, where the plugin keeps the host's
    /// uid (in a user namespace of its own) without any capability.
    pub fn run_as(mut self, uid: u32, gid: u32) -> Self {
        self.run_as = Some((uid, gid));
        self
    }

    /// The most processes and threads the plugin's tree may have at once
    /// (`RLIMIT_NPROC`; default 256): with
    /// `Isolation::memory_limit`, its memory is at most this many times that limit.
    /// The count is per uid: on a root host, every process of [`Sandbox::run_as`]'s
    /// uid counts (plugins sharing a uid share it); on a non-root host, those of the
    /// plugin's own user namespace (Linux 5.14 or later).
    pub fn max_processes(mut self, count: u64) -> Self {
        self.max_processes = Some(count.max(1));
        self
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

    /// Limits reads to what loading the plugin needs: the plugin's file (through the
    /// descriptor the host checked; not the directories its `RUNPATH` names, which the
    /// plugin chooses: grant those with [`Sandbox::allow_read`]), the system library directories
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

    pub(crate) fn to_wire(&self) -> Wire {
        #[cfg(unix)]
        let bytes = |v: &[PathBuf]| {
            use std::os::unix::ffi::OsStrExt;
            v.iter().map(|p| p.as_os_str().as_bytes().to_vec()).collect()
        };
        #[cfg(not(unix))]
        let bytes = |v: &[PathBuf]| v.iter().map(|p| p.to_string_lossy().into_owned().into_bytes()).collect();
        (
            self.read_only,
            bytes(&self.writable),
            self.restrict_reads,
            bytes(&self.readable),
            self.deny_network,
            self.deny_exec,
            self.accept_weaker,
            self.allow_list,
            self.run_as,
            self.max_processes,
        )
    }

    pub(crate) fn from_wire(w: Wire) -> Sandbox {
        #[cfg(unix)]
        let paths = |v: Vec<Vec<u8>>| {
            use std::os::unix::ffi::OsStringExt;
            v.into_iter().map(|b| PathBuf::from(std::ffi::OsString::from_vec(b))).collect()
        };
        #[cfg(not(unix))]
        let paths =
            |v: Vec<Vec<u8>>| v.into_iter().map(|b| PathBuf::from(String::from_utf8_lossy(&b).into_owned())).collect();
        let (
            read_only,
            writable,
            restrict_reads,
            readable,
            deny_network,
            deny_exec,
            accept_weaker,
            allow_list,
            run_as,
            max_processes,
        ) = w;
        Sandbox {
            read_only,
            writable: paths(writable),
            restrict_reads,
            readable: paths(readable),
            deny_network,
            deny_exec,
            accept_weaker,
            allow_list,
            run_as,
            max_processes,
        }
    }
}

/// Directories the dynamic loader reads system libraries from (granted by the
/// host: never taken from the plugin's own `RUNPATH`/`RPATH`, which names whatever
/// the plugin wants — issue 16 found `/etc:/` there).
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

/// Why a sandbox could not be applied (the runner reports it as
/// [`LoadError::Isolation`](crate::LoadError::Isolation)).
#[derive(Debug, thiserror::Error)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // (most are made on Linux only)
pub(crate) enum SandboxError {
    /// The seccomp filter could not be built or installed.
    #[error("cannot apply the system-call sandbox (seccomp): {0}")]
    Seccomp(String),
    /// Landlock failed on a kernel that has what it needs.
    #[error("cannot apply the filesystem sandbox (Landlock): {0}")]
    Landlock(String),
    /// The kernel lacks a protection the sandbox asks for.
    #[error(
        "this kernel cannot enforce the sandbox (Landlock ABI {abi} here, ABI 6 — Linux 6.12 — needed: {reason}); \
         use a newer kernel with Landlock enabled (lsm=landlock,...), or accept less with \
         `Sandbox::accept_weaker_kernel()`"
    )]
    WeakKernel { abi: i64, reason: String },
    /// A step of dropping privileges failed.
    #[error("cannot drop the plugin's privileges ({step}): {source}")]
    Privileges { step: &'static str, source: std::io::Error },
    /// Capabilities were left after dropping them (a kernel with capabilities this
    /// crate does not know).
    #[error("the plugin's process still holds capabilities after dropping them: {0}")]
    CapabilitiesLeft(String),
    /// On a root host, the unprivileged uid cannot read the plugin file.
    #[error(
        "a sandboxed plugin runs as uid {uid} / gid {gid} on a root host, and cannot read its file \
         (owner {owner}:{group}, mode {mode:o}); make the file readable by others (chmod o+r) or \
         choose its owner with `Sandbox::run_as`"
    )]
    PluginUnreadable { uid: u32, gid: u32, owner: u32, group: u32, mode: u32 },
    /// `Sandbox::run_as(0, ..)`.
    #[error("`Sandbox::run_as` cannot name uid or gid 0: root in the sandbox would be root")]
    RunAsRoot,
    /// Not Linux.
    #[cfg(not(target_os = "linux"))]
    #[error("sandboxing is only available on Linux")]
    Unsupported,
}

#[cfg(target_os = "linux")]
type Rules = std::collections::BTreeMap<i64, Vec<seccompiler::SeccompRule>>;

#[cfg(target_os = "linux")]
fn seccomp_err(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Seccomp(e.to_string())
}

/// A rule matching when argument `arg` (32 bits) equals `v`.
#[cfg(target_os = "linux")]
fn arg_is(arg: u8, v: u64) -> Result<seccompiler::SeccompRule, SandboxError> {
    use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, v)
        .and_then(|c| SeccompRule::new(vec![c]))
        .map_err(seccomp_err)
}

/// The `CLONE_NEW*` flags: a new namespace of any kind.
#[cfg(target_os = "linux")]
const CLONE_NAMESPACES: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u64
    | 0x80; // CLONE_NEWTIME (not in libc for every target)

/// The system calls any sandbox refuses: ways out that no plugin needs.
#[cfg(target_os = "linux")]
fn hardening_rules() -> Result<Rules, SandboxError> {
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
        467, // open_tree_attr (Linux 6.15)
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
        443, // quotactl_fd (Linux 5.14)
        libc::SYS_syslog,
        libc::SYS_sethostname,
        libc::SYS_setdomainname,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_pidfd_getfd,
        libc::SYS_kcmp,
        // What issue 16 found root using (refused by the dropped capabilities too).
        libc::SYS_fanotify_init,
        libc::SYS_vhangup,
        libc::SYS_mlockall,
        libc::SYS_setpriority,
        libc::SYS_sched_setscheduler,
        libc::SYS_sched_setattr,
        libc::SYS_setrlimit,
        469, // file_setattr (Linux 6.17)
    ] {
        rules.insert(call, vec![]);
    }
    // `clone` with a namespace flag (clone3 is refused as a whole, see `apply`).
    let clone = [CLONE_NAMESPACES]
        .iter()
        .flat_map(|&all| (0..64).map(move |bit| all & (1 << bit)).filter(|&f| f != 0))
        .map(|f| {
            SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(f), f)
                .and_then(|c| SeccompRule::new(vec![c]))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(seccomp_err)?;
    rules.insert(libc::SYS_clone, clone);
    // `prlimit64` setting a limit (its new value non-null); reading stays allowed.
    let prlimit_sets = SeccompCondition::new(2, SeccompCmpArgLen::Qword, SeccompCmpOp::Ne, 0)
        .and_then(|c| SeccompRule::new(vec![c]))
        .map_err(seccomp_err)?;
    rules.insert(libc::SYS_prlimit64, vec![prlimit_sets]);
    Ok(rules)
}

/// What every isolated process refuses, sandboxed or not: reaching into the host
/// (`ptrace`, `process_vm_*`), typing into a terminal (`TIOCSTI`, `TIOCLINUX`), and
/// changing its parent-death signal.
#[cfg(target_os = "linux")]
fn always_rules() -> Result<Rules, SandboxError> {
    let mut rules = std::collections::BTreeMap::new();
    for call in [libc::SYS_ptrace, libc::SYS_process_vm_readv, libc::SYS_process_vm_writev] {
        rules.insert(call, vec![]);
    }
    rules.insert(libc::SYS_ioctl, vec![arg_is(1, libc::TIOCSTI)?, arg_is(1, libc::TIOCLINUX)?]);
    rules.insert(libc::SYS_prctl, vec![arg_is(0, libc::PR_SET_PDEATHSIG as u64)?]);
    Ok(rules)
}

/// The allow-list of [`Sandbox::only_needed_system_calls`]: what the runner and a
/// plugin using std, threads, allocation, time, files (under Landlock) and the
/// shared-memory channel call, found by running the fixtures under `strace -f`
/// (see `docs/isolation.md`). Everything else is refused.
#[cfg(target_os = "linux")]
fn allowed_rules() -> Result<Rules, SandboxError> {
    use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};
    let mut rules: Rules = std::collections::BTreeMap::new();
    let any = [
        // Descriptors: reading, writing, waiting (the channel's socket, eventfds and
        // memfd; files Landlock lets through).
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_readv,
        libc::SYS_writev,
        libc::SYS_pread64,
        libc::SYS_pwrite64,
        libc::SYS_preadv,
        libc::SYS_pwritev,
        libc::SYS_preadv2,
        libc::SYS_pwritev2,
        libc::SYS_close,
        libc::SYS_close_range,
        libc::SYS_lseek,
        libc::SYS_dup,
        libc::SYS_dup3,
        libc::SYS_fcntl,
        libc::SYS_pipe2,
        libc::SYS_ppoll,
        libc::SYS_pselect6,
        libc::SYS_epoll_create1,
        libc::SYS_epoll_ctl,
        libc::SYS_epoll_pwait,
        libc::SYS_epoll_pwait2,
        libc::SYS_eventfd2,
        libc::SYS_timerfd_create,
        libc::SYS_timerfd_settime,
        libc::SYS_timerfd_gettime,
        libc::SYS_signalfd4,
        libc::SYS_flock,
        libc::SYS_fsync,
        libc::SYS_fdatasync,
        libc::SYS_ftruncate,
        libc::SYS_fallocate,
        libc::SYS_copy_file_range,
        libc::SYS_sendfile,
        libc::SYS_splice,
        // Sockets already open (the channel; `socketpair` reaches nothing).
        libc::SYS_socketpair,
        libc::SYS_sendto,
        libc::SYS_recvfrom,
        libc::SYS_sendmsg,
        libc::SYS_recvmsg,
        libc::SYS_shutdown,
        libc::SYS_getsockopt,
        libc::SYS_getsockname,
        libc::SYS_getpeername,
        // Files by name (Landlock decides which).
        libc::SYS_openat,
        libc::SYS_newfstatat,
        libc::SYS_fstat,
        libc::SYS_statx,
        libc::SYS_statfs,
        libc::SYS_fstatfs,
        libc::SYS_faccessat,
        libc::SYS_faccessat2,
        libc::SYS_getdents64,
        libc::SYS_readlinkat,
        libc::SYS_getcwd,
        libc::SYS_chdir,
        libc::SYS_fchdir,
        libc::SYS_mkdirat,
        libc::SYS_unlinkat,
        libc::SYS_renameat,
        libc::SYS_renameat2,
        libc::SYS_linkat,
        libc::SYS_symlinkat,
        libc::SYS_truncate,
        libc::SYS_umask,
        // Memory.
        libc::SYS_brk,
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_mprotect,
        libc::SYS_mremap,
        libc::SYS_madvise,
        libc::SYS_msync,
        libc::SYS_mincore,
        libc::SYS_membarrier,
        // Threads and processes of its own (namespaced `clone` below).
        libc::SYS_futex,
        libc::SYS_set_robust_list,
        libc::SYS_get_robust_list,
        libc::SYS_set_tid_address,
        libc::SYS_rseq,
        libc::SYS_sched_yield,
        libc::SYS_sched_getaffinity,
        libc::SYS_sched_getparam,
        libc::SYS_sched_getscheduler,
        libc::SYS_sched_get_priority_max,
        libc::SYS_sched_get_priority_min,
        libc::SYS_getpriority,
        libc::SYS_exit,
        libc::SYS_exit_group,
        libc::SYS_wait4,
        libc::SYS_waitid,
        libc::SYS_getpid,
        libc::SYS_getppid,
        libc::SYS_gettid,
        libc::SYS_getuid,
        libc::SYS_geteuid,
        libc::SYS_getgid,
        libc::SYS_getegid,
        libc::SYS_getresuid,
        libc::SYS_getresgid,
        libc::SYS_getgroups,
        libc::SYS_getpgid,
        libc::SYS_getsid,
        libc::SYS_setsid,
        libc::SYS_setpgid,
        libc::SYS_getrusage,
        libc::SYS_times,
        libc::SYS_uname,
        libc::SYS_sysinfo,
        libc::SYS_capget,
        // Signals (the PID namespace and Landlock's scope keep them inside).
        libc::SYS_rt_sigaction,
        libc::SYS_rt_sigprocmask,
        libc::SYS_rt_sigreturn,
        libc::SYS_rt_sigpending,
        libc::SYS_rt_sigsuspend,
        libc::SYS_rt_sigtimedwait,
        libc::SYS_sigaltstack,
        libc::SYS_kill,
        libc::SYS_tgkill,
        libc::SYS_tkill,
        libc::SYS_restart_syscall,
        // Time.
        libc::SYS_clock_gettime,
        libc::SYS_clock_getres,
        libc::SYS_clock_nanosleep,
        libc::SYS_nanosleep,
        libc::SYS_gettimeofday,
        libc::SYS_getitimer,
        libc::SYS_setitimer,
        libc::SYS_timer_create,
        libc::SYS_timer_settime,
        libc::SYS_timer_gettime,
        libc::SYS_timer_getoverrun,
        libc::SYS_timer_delete,
        // Randomness (std's hash keys, glibc's malloc).
        libc::SYS_getrandom,
        // Refused by a filter of its own with ENOSYS, so libc falls back to `clone`.
        libc::SYS_clone3,
    ];
    for call in any {
        rules.insert(call, vec![]);
    }
    #[cfg(target_arch = "x86_64")]
    for call in [
        // The x86_64 names of the same (aarch64 has only the `*at` forms).
        libc::SYS_open,
        libc::SYS_stat,
        libc::SYS_lstat,
        libc::SYS_access,
        libc::SYS_readlink,
        libc::SYS_mkdir,
        libc::SYS_unlink,
        libc::SYS_rename,
        libc::SYS_rmdir,
        libc::SYS_link,
        libc::SYS_symlink,
        libc::SYS_poll,
        libc::SYS_select,
        libc::SYS_epoll_wait,
        libc::SYS_pipe,
        libc::SYS_dup2,
        libc::SYS_fork,
        libc::SYS_vfork,
        libc::SYS_getpgrp,
        libc::SYS_time,
        libc::SYS_alarm,
        libc::SYS_pause,
        libc::SYS_arch_prctl,
    ] {
        rules.insert(call, vec![]);
    }
    // Threads and forks, but no namespace (flags in the first argument).
    let no_namespace = SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(CLONE_NAMESPACES), 0)
        .and_then(|c| SeccompRule::new(vec![c]))
        .map_err(seccomp_err)?;
    rules.insert(libc::SYS_clone, vec![no_namespace]);
    // Reading limits (glibc's `getrlimit` is `prlimit64(0, r, NULL, old)`), never
    // setting them.
    let reads = [
        SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, 0),
        SeccompCondition::new(2, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, 0),
    ]
    .into_iter()
    .collect::<Result<Vec<_>, _>>()
    .and_then(SeccompRule::new)
    .map_err(seccomp_err)?;
    rules.insert(libc::SYS_prlimit64, vec![reads]);
    #[cfg(target_arch = "x86_64")]
    rules.insert(libc::SYS_getrlimit, vec![]);
    // `ioctl`: descriptor flags, and terminal queries (`isatty`); no file attributes
    // (`FS_IOC_SETFLAGS`), no terminal input.
    let ioctls = [libc::FIOCLEX, libc::FIONCLEX, libc::FIONBIO, libc::FIONREAD, libc::TCGETS, libc::TIOCGWINSZ];
    // (The request's type differs between C libraries: a cast for all of them.)
    #[allow(clippy::unnecessary_cast)]
    let ioctls = ioctls.iter().map(|&r| arg_is(1, r as u64)).collect::<Result<_, _>>()?;
    rules.insert(libc::SYS_ioctl, ioctls);
    // `prctl`: naming threads and mappings, reading what it reads.
    let prctls = [libc::PR_SET_NAME, libc::PR_GET_NAME, 0x5356_4d41 /* PR_SET_VMA */, libc::PR_GET_DUMPABLE];
    rules.insert(libc::SYS_prctl, prctls.iter().map(|&o| arg_is(0, o as u64)).collect::<Result<_, _>>()?);
    // `socket` is absent: `strict()` denies the network (no family at all).
    Ok(rules)
}

/// The seccomp programs a plugin's process installs (after Landlock), in order, each
/// as the kernel takes it: compiled by the host, once per kind of sandbox (see
/// [`filters`]), and sent in the load request (one program today: see [`Plan`]).
/// Compiling the allow-list took the plugin's process ~45 µs on every start; the
/// programs are the same for every plugin with the same kind of sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filters {
    /// The architecture they check for (`std::env::consts::ARCH` of the host that
    /// compiled them): a runner built for another one refuses them.
    pub(crate) arch: String,
    /// Each program, 8 bytes per instruction (a `sock_filter` in native byte order).
    pub(crate) programs: Vec<Vec<u8>>,
}

/// One seccomp program, as seccompiler and the kernel take it.
#[cfg(target_os = "linux")]
type Program = seccompiler::BpfProgram;

/// How many programs a process with `sandbox` installs: one, whatever the sandbox
/// (see [`Plan`]); a runner refuses filters of another count.
#[cfg(target_os = "linux")]
fn program_count(_sandbox: Option<&Sandbox>) -> usize {
    1
}

/// What a process's one filter decides, before it is compiled: `rules` matched get
/// `matched`, other calls `otherwise`; `clone3` (with a sandbox) gets `ENOSYS`
/// whatever `rules` say; x32 numbers (on x86_64, without the allow-list, whose
/// `otherwise` refuses them anyway) get `EPERM` before anything else.
///
/// (Once three filters: the `clone3` one, the x32 guard and the rules. One program
/// makes the same decisions — `tests` checks it call by call against the three — and
/// the kernel's fixed cost per filter, ~20 µs each at install and a run per system
/// call, is paid once.)
#[cfg(target_os = "linux")]
struct Plan {
    rules: Rules,
    matched: seccompiler::SeccompAction,
    otherwise: seccompiler::SeccompAction,
    clone3_unimplemented: bool,
    x32_refused: bool,
}

/// The [`Plan`] for `sandbox` (`None`: [`contain_always`]'s).
#[cfg(target_os = "linux")]
fn plan(sandbox: Option<&Sandbox>) -> Result<Plan, SandboxError> {
    use seccompiler::SeccompAction;
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    let x32 = cfg!(target_arch = "x86_64");
    let Some(sandbox) = sandbox else {
        return Ok(Plan {
            rules: always_rules()?,
            matched: eperm,
            otherwise: SeccompAction::Allow,
            clone3_unimplemented: false,
            x32_refused: x32,
        });
    };
    // clone3's flags sit behind a pointer seccomp cannot read: refused as
    // unimplemented (`clone3_unimplemented`), so libc falls back to `clone`, whose
    // flags are checked.
    if sandbox.allow_list {
        let mut rules = allowed_rules()?;
        if !sandbox.deny_exec {
            rules.insert(libc::SYS_execve, vec![]);
            rules.insert(libc::SYS_execveat, vec![]);
        }
        if !sandbox.deny_network {
            rules.insert(libc::SYS_socket, vec![]);
            rules.insert(libc::SYS_connect, vec![]);
            rules.insert(libc::SYS_bind, vec![]);
            rules.insert(libc::SYS_listen, vec![]);
            rules.insert(libc::SYS_accept4, vec![]);
            rules.insert(libc::SYS_setsockopt, vec![]);
        }
        // (Metadata changes are absent from the list: refused everywhere.)
        return Ok(Plan {
            rules,
            matched: SeccompAction::Allow,
            otherwise: eperm,
            clone3_unimplemented: true,
            x32_refused: false,
        });
    }
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
        // `ioctl(FS_IOC_SETFLAGS)` (immutable, append-only) and `FS_IOC_FSSETXATTR`.
        let mut ioctl = rules.remove(&libc::SYS_ioctl).unwrap_or_default();
        ioctl.push(arg_is(1, 0x4008_6602)?); // FS_IOC_SETFLAGS
        ioctl.push(arg_is(1, 0x4004_6602)?); // FS_IOC32_SETFLAGS
        ioctl.push(arg_is(1, 0x401c_5820)?); // FS_IOC_FSSETXATTR
        rules.insert(libc::SYS_ioctl, ioctl);
    }
    Ok(Plan { rules, matched: eperm, otherwise: SeccompAction::Allow, clone3_unimplemented: true, x32_refused: x32 })
}

/// The programs for `sandbox` (`None`: [`contain_always`]'s), in the order they are
/// installed: the one [`plan`] compiled.
#[cfg(target_os = "linux")]
fn programs(sandbox: Option<&Sandbox>) -> Result<Vec<Program>, SandboxError> {
    Ok(vec![compile(plan(sandbox)?)?])
}

/// The filters for `sandbox` (`None`: no sandbox), compiled once per kind of sandbox
/// in this process (what changes a program: the allow-list, exec, network,
/// read-only) and kept.
#[cfg(target_os = "linux")]
pub(crate) fn filters(sandbox: Option<&Sandbox>) -> Result<std::sync::Arc<Filters>, SandboxError> {
    use std::sync::{Arc, Mutex};
    type Key = Option<[bool; 4]>;
    static MADE: Mutex<Vec<(Key, Arc<Filters>)>> = Mutex::new(Vec::new());
    let key = sandbox.map(|s| [s.allow_list, s.deny_exec, s.deny_network, s.read_only]);
    if let Some((_, made)) = MADE.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|(k, _)| *k == key) {
        return Ok(Arc::clone(made));
    }
    let programs = programs(sandbox)?
        .iter()
        .map(|program| {
            program
                .iter()
                .flat_map(|op| {
                    let mut bytes = [0u8; 8];
                    bytes[..2].copy_from_slice(&op.code.to_ne_bytes());
                    bytes[2] = op.jt;
                    bytes[3] = op.jf;
                    bytes[4..].copy_from_slice(&op.k.to_ne_bytes());
                    bytes
                })
                .collect()
        })
        .collect();
    let made = Arc::new(Filters { arch: std::env::consts::ARCH.to_owned(), programs });
    MADE.lock().unwrap_or_else(|p| p.into_inner()).push((key, Arc::clone(&made)));
    Ok(made)
}

/// No seccomp off Linux: no programs.
#[cfg(not(target_os = "linux"))]
pub(crate) fn filters(_: Option<&Sandbox>) -> Result<std::sync::Arc<Filters>, SandboxError> {
    Ok(std::sync::Arc::default())
}

/// `filters`' programs, checked to be what a process with `sandbox` installs (for
/// this architecture, as many as it installs, whole instructions), as the kernel
/// takes them.
#[cfg(target_os = "linux")]
fn decode(filters: &Filters, sandbox: Option<&Sandbox>) -> Result<Vec<Program>, SandboxError> {
    use seccompiler::sock_filter;
    if filters.arch != std::env::consts::ARCH {
        return Err(SandboxError::Seccomp(format!(
            "the host compiled its filters for {}, and this runner is built for {}: use a runner built for the host's architecture",
            filters.arch,
            std::env::consts::ARCH
        )));
    }
    let expected = program_count(sandbox);
    if filters.programs.len() != expected {
        return Err(SandboxError::Seccomp(format!(
            "the host sent {} filters where this sandbox installs {expected}: a runner of another tomada version?",
            filters.programs.len()
        )));
    }
    filters
        .programs
        .iter()
        .map(|bytes| {
            // (The kernel refuses an empty or longer program, and checks every jump.)
            if bytes.is_empty() || bytes.len() % 8 != 0 || bytes.len() / 8 > libc::BPF_MAXINSNS as usize {
                return Err(SandboxError::Seccomp(format!("a filter of {} bytes is no program", bytes.len())));
            }
            Ok(bytes
                .chunks_exact(8)
                .map(|op| sock_filter {
                    code: u16::from_ne_bytes([op[0], op[1]]),
                    jt: op[2],
                    jf: op[3],
                    k: u32::from_ne_bytes([op[4], op[5], op[6], op[7]]),
                })
                .collect())
        })
        .collect()
}

/// Installs `programs`, in order, on every thread (the runner has one at this point).
#[cfg(target_os = "linux")]
fn install(programs: &[Program]) -> Result<(), SandboxError> {
    for program in programs {
        seccompiler::apply_filter_all_threads(program).map_err(seccomp_err)?;
        super::steps::mark("worker: a seccomp filter installed");
    }
    Ok(())
}

/// A filter: `rules` matched get `matched`, the rest `otherwise`, as a binary search
/// on the call's number rather than seccompiler's one comparison after another.
///
/// The kernel, when a filter is installed, runs it once for every system call number
/// to learn which ones it always allows (its action cache, Linux 5.11): through a
/// chain of ~190 comparisons (the allow-list) that cost the plugin's process ~390 µs
/// of its start, and every system call the plugin makes walks the same chain. Here
/// the calls' blocks are seccompiler's own, each made for a filter of that call
/// alone (`[architecture check] [load the number] [block] [return otherwise]`: the
/// block returns if the number is its call's, else goes on right after itself); a
/// tree of `≥` comparisons over the sorted numbers leads to runs of at most
/// [`LEAF`] blocks, each run ending with `otherwise`, as seccompiler's program ends.
#[cfg(target_os = "linux")]
fn compile(plan: Plan) -> Result<Program, SandboxError> {
    use seccompiler::{SeccompAction, SeccompFilter, TargetArch, sock_filter};
    let Plan { rules, matched, otherwise, clone3_unimplemented, x32_refused } = plan;
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(seccomp_err)?;
    let op = |code: u32, jt: u8, jf: u8, k: u32| sock_filter { code: code as u16, jt, jf, k };
    let ret_otherwise = op(libc::BPF_RET | libc::BPF_K, 0, 0, u32::from(otherwise.clone()));
    const HEAD: usize = 4; // the architecture check (3) and the number's load
    let load_nr = op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0);
    let same = |a: &sock_filter, b: &sock_filter| (a.code, a.jt, a.jf, a.k) == (b.code, b.jt, b.jf, b.k);
    // One call's block, as seccompiler makes it in a filter of that call alone, its
    // matches getting `action`.
    let mut head = Vec::new();
    let mut block = |nr: i64, chain, action: SeccompAction| -> Result<Vec<sock_filter>, SandboxError> {
        // (seccompiler starts every program with an architecture check: a call under
        // another one, as through `int 0x80` on x86_64, kills the process.)
        let rules: Rules = std::iter::once((nr, chain)).collect();
        let filter = SeccompFilter::new(rules, otherwise.clone(), action, arch).map_err(seccomp_err)?;
        let one: Program = filter.try_into().map_err(seccomp_err)?;
        // (Checked, not assumed: another seccompiler could lay its program out
        // otherwise, and this would then be wrong.)
        if one.len() <= HEAD + 1 || !same(&one[HEAD - 1], &load_nr) || !same(&one[one.len() - 1], &ret_otherwise) {
            return Err(SandboxError::Seccomp("seccompiler laid out a program in a way tomada does not know".into()));
        }
        head = one[..HEAD].to_vec();
        Ok(one[HEAD..one.len() - 1].to_vec())
    };
    let mut blocks = std::collections::BTreeMap::new();
    for (nr, chain) in rules {
        blocks.insert(nr, block(nr, chain, matched.clone())?);
    }
    if clone3_unimplemented {
        blocks.insert(libc::SYS_clone3, block(libc::SYS_clone3, vec![], SeccompAction::Errno(libc::ENOSYS as u32))?);
    }
    if blocks.is_empty() {
        let filter = SeccompFilter::new(Rules::new(), otherwise, matched, arch).map_err(seccomp_err)?;
        return filter.try_into().map_err(seccomp_err);
    }
    let blocks: Vec<(i64, Vec<sock_filter>)> = blocks.into_iter().collect();
    let mut program = head;
    if x32_refused {
        // A deny-list names only x86_64 numbers: the x32 `ptrace` (`nr | 0x40000000`
        // under the x86_64 architecture) would pass it.
        const X32: u32 = 0x4000_0000;
        program.push(op(libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K, 0, 1, X32));
        program.push(op(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32));
    }
    search(&blocks, ret_otherwise, &mut program);
    if program.len() > libc::BPF_MAXINSNS as usize {
        return Err(SandboxError::Seccomp(format!("a filter of {} instructions is too long", program.len())));
    }
    Ok(program)
}

/// The most call blocks in a run of [`compile`]'s search tree.
#[cfg(target_os = "linux")]
const LEAF: usize = 4;

/// Appends the search over `blocks` (sorted by number) to `out`: at most [`LEAF`]
/// blocks and `otherwise`, or `if nr >= middle { right } else { left }`.
#[cfg(target_os = "linux")]
fn search(blocks: &[(i64, Vec<seccompiler::sock_filter>)], otherwise: seccompiler::sock_filter, out: &mut Program) {
    use seccompiler::sock_filter;
    if blocks.len() <= LEAF {
        for (_, block) in blocks {
            out.extend(block.iter().cloned());
        }
        out.push(otherwise);
        return;
    }
    let middle = blocks.len() / 2;
    let mut left = Vec::new();
    search(&blocks[..middle], otherwise.clone(), &mut left);
    // `jge` then `ja` over the left half (a conditional jump reaches 255 instructions
    // at most; `ja` any distance).
    out.push(sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16,
        jt: 0,
        jf: 1,
        k: blocks[middle].0 as u32,
    });
    out.push(sock_filter { code: (libc::BPF_JMP | libc::BPF_JA) as u16, jt: 0, jf: 0, k: left.len() as u32 });
    out.extend(left);
    search(&blocks[middle..], otherwise, out);
}

/// What every isolated plugin's process gets, sandbox or not (before loading):
/// the [`always_rules`] filter with the x32 guard (`filters`, from the host), and a
/// Landlock domain that refuses only creating block devices but, being a domain,
/// keeps `ptrace` (and `/proc/<pid>/mem`) and, on ABI 6, signals from reaching any
/// process outside it. On a kernel without Landlock, the seccomp part still holds.
#[cfg(target_os = "linux")]
pub(crate) fn contain_always(filters: &Filters) -> Result<(), SandboxError> {
    use landlock::{AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, Scope};
    install(&decode(filters, None)?)?;
    let _ = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::MakeBlock)
        .and_then(|r| r.scope(Scope::Signal))
        .and_then(|r| r.create())
        .and_then(|r| r.restrict_self());
    Ok(())
}

/// Applies `sandbox` to this process: Landlock, then `filters` (the host's
/// compilation of its [`plan`]: clone3 refused as unimplemented, and the allow-list,
/// or the x32 guard and the deny-list). `plugin` is the descriptor of the
/// file about to be loaded (the only grant about the plugin: nothing is read from it
/// by path).
#[cfg(target_os = "linux")]
pub(crate) fn apply(
    sandbox: &Sandbox,
    plugin: std::os::fd::BorrowedFd<'_>,
    filters: &Filters,
) -> Result<(), SandboxError> {
    // (Checked before anything is applied: a wrong set fails the load as it is.)
    let programs = decode(filters, Some(sandbox))?;
    landlock(sandbox, plugin)?;
    install(&programs)
}

#[cfg(target_os = "linux")]
fn landlock(sandbox: &Sandbox, plugin: std::os::fd::BorrowedFd<'_>) -> Result<(), SandboxError> {
    use landlock::{
        ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, Ruleset, RulesetAttr,
        RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
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
        let abi = kernel_abi();
        if abi >= 6 {
            return SandboxError::Landlock(e.to_string());
        }
        SandboxError::WeakKernel { abi, reason: e.to_string() }
    };
    let write = all & handled & !AccessFs::IoctlDev;
    let mut grants: Vec<(Vec<PathBuf>, landlock::BitFlags<AccessFs>)> = vec![(readable, read & handled)];
    if sandbox.read_only {
        // `/dev/null` stays writable: writing to it reaches nothing.
        grants.push((vec!["/dev/null".into()], write));
        grants.push((sandbox.writable.clone(), write));
    }
    let mut ruleset = created.map_err(|e| reason(&e))?;
    // SAFETY: `F_GET_SEALS` reads the descriptor's seals; no memory is passed.
    let sealed_copy = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&plugin), libc::F_GET_SEALS) } >= 0;
    if sandbox.restrict_reads && !sealed_copy {
        // The plugin file through the descriptor the host checked (the loader opens
        // `/proc/self/fd/4`, this very inode): nothing about it is looked up by path.
        // (The host's sealed copy of it, a memfd — see `file.rs` — lives on the
        // kernel's internal shmem mount, which Landlock does not restrict and takes no
        // rule on (`EBADFD`): it is readable as it is, and names nothing else.)
        let file_access = read & handled & AccessFs::from_file(abi);
        ruleset = ruleset.add_rule(PathBeneath::new(plugin, file_access)).map_err(|e| reason(&e))?;
    }
    for (paths, access) in grants {
        if !access.is_empty() {
            ruleset = ruleset.add_rules(path_beneath_rules(&paths, access)).map_err(|e| reason(&e))?;
        }
    }
    let status = ruleset.restrict_self().map_err(|e| reason(&e))?;
    super::steps::mark("worker: landlock");
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok(()),
        _ if sandbox.accept_weaker && status.ruleset != RulesetStatus::NotEnforced => Ok(()),
        other => Err(reason(&format!("status {other:?}"))),
    }
}

/// Root in the sandbox is not root: run in the worker (after the namespaces, before
/// Landlock, seccomp and the plugin). On a root host: no supplementary groups, the
/// gid and uid of [`Sandbox::run_as`] (65534 by default) — the plugin file is already
/// open (descriptor 4), but the loader reopens it as `/proc/self/fd/4`, so it must be
/// readable by that uid. On any host: securebits locked (`SECBIT_NOROOT`,
/// `NO_SETUID_FIXUP` locked off, `KEEP_CAPS` locked off, no ambient raise), every
/// capability dropped from every set, `no_new_privs`, `RLIMIT_NPROC`, and every hard
/// limit lowered to its soft value.
#[cfg(target_os = "linux")]
pub(crate) fn drop_privileges(sandbox: &Sandbox, plugin: std::os::fd::BorrowedFd<'_>) -> Result<(), SandboxError> {
    use caps::CapSet;
    use std::os::fd::AsRawFd;
    let os = |step: &'static str| SandboxError::Privileges { step, source: std::io::Error::last_os_error() };
    // SAFETY: `geteuid` has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let (uid, gid) = sandbox.run_as.unwrap_or((UNPRIVILEGED_ID, UNPRIVILEGED_ID));
    if root && (uid == 0 || gid == 0) {
        return Err(SandboxError::RunAsRoot);
    }
    if root {
        // SAFETY: `fstat` writes into a local buffer.
        let mut st = unsafe { std::mem::zeroed::<libc::stat>() };
        // SAFETY: as above, on the plugin's descriptor.
        if unsafe { libc::fstat(plugin.as_raw_fd(), &mut st) } != 0 {
            return Err(os("fstat of the plugin file"));
        }
        let readable = st.st_mode & 0o004 != 0
            || (st.st_uid == uid && st.st_mode & 0o400 != 0)
            || (st.st_gid == gid && st.st_mode & 0o040 != 0);
        if !readable {
            return Err(SandboxError::PluginUnreadable {
                uid,
                gid,
                owner: st.st_uid,
                group: st.st_gid,
                mode: st.st_mode & 0o7777,
            });
        }
    }
    // Locked securebits (needs CAP_SETPCAP, which root and the owner of a fresh user
    // namespace have; without it there is nothing to drop): uid 0 gets no
    // capabilities from exec, a change of uid clears them (the fixup cannot be turned
    // off), `PR_SET_KEEPCAPS` cannot keep them, none becomes ambient.
    const NOROOT: libc::c_ulong = 1 << 0;
    const NOROOT_LOCKED: libc::c_ulong = 1 << 1;
    const NO_SETUID_FIXUP_LOCKED: libc::c_ulong = 1 << 3;
    const KEEP_CAPS_LOCKED: libc::c_ulong = 1 << 5;
    const NO_CAP_AMBIENT_RAISE: libc::c_ulong = 1 << 6;
    const NO_CAP_AMBIENT_RAISE_LOCKED: libc::c_ulong = 1 << 7;
    let bits = NOROOT
        | NOROOT_LOCKED
        | NO_SETUID_FIXUP_LOCKED
        | KEEP_CAPS_LOCKED
        | NO_CAP_AMBIENT_RAISE
        | NO_CAP_AMBIENT_RAISE_LOCKED;
    let has_setpcap = caps::has_cap(None, CapSet::Effective, caps::Capability::CAP_SETPCAP).unwrap_or(false);
    // SAFETY: `prctl(PR_SET_SECUREBITS)` takes integers.
    if has_setpcap && unsafe { libc::prctl(libc::PR_SET_SECUREBITS, bits) } != 0 {
        return Err(os("PR_SET_SECUREBITS"));
    }
    let caps_err = |step: &'static str| {
        move |e: caps::errors::CapsError| SandboxError::Privileges {
            step,
            source: std::io::Error::other(e.to_string()),
        }
    };
    if has_setpcap {
        // Every bit of the bounding set, known to this crate or not, up to the first
        // the kernel does not have (EINVAL): one `prctl` each (`caps::clear` reads
        // each one first, twice the system calls).
        for cap in 0..64 {
            // SAFETY: `prctl(PR_CAPBSET_DROP)` takes integers.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0 {
                if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                    break;
                }
                return Err(os("bounding set"));
            }
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(caps_err("ambient set"))?;
    if root {
        // SAFETY: plain system calls on integers; the process is single-threaded.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0 {
                return Err(os("setgroups"));
            }
            if libc::setresgid(gid, gid, gid) != 0 {
                return Err(os("setresgid"));
            }
            if libc::setresuid(uid, uid, uid) != 0 {
                return Err(os("setresuid"));
            }
        }
    }
    for set in [CapSet::Inheritable, CapSet::Effective, CapSet::Permitted] {
        caps::clear(None, set).map_err(caps_err("capability sets"))?;
    }
    // SAFETY: `prctl(PR_SET_NO_NEW_PRIVS)` takes integers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(os("PR_SET_NO_NEW_PRIVS"));
    }
    // Checked as the kernel sees them (a capability this crate does not know
    // included): every set empty.
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| SandboxError::Privileges { step: "reading /proc/self/status", source: e })?;
    let left: Vec<&str> = status.lines().filter(|l| l.starts_with("Cap") && !l.ends_with("0000000000000000")).collect();
    if !left.is_empty() {
        return Err(SandboxError::CapabilitiesLeft(left.join(", ")));
    }
    // The tree's processes, then every limit fixed: the hard value at the soft one, so
    // nothing is raised from inside (raising a hard limit needs CAP_SYS_RESOURCE).
    let nproc = sandbox.max_processes.unwrap_or(DEFAULT_MAX_PROCESSES);
    let limit = libc::rlimit { rlim_cur: nproc as libc::rlim_t, rlim_max: nproc as libc::rlim_t };
    // SAFETY: `setrlimit` reads a local.
    if unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &limit) } != 0 {
        return Err(os("RLIMIT_NPROC"));
    }
    let resources = [
        libc::RLIMIT_AS,
        libc::RLIMIT_CPU,
        libc::RLIMIT_NOFILE,
        libc::RLIMIT_NPROC,
        libc::RLIMIT_FSIZE,
        libc::RLIMIT_DATA,
        libc::RLIMIT_STACK,
        libc::RLIMIT_CORE,
        libc::RLIMIT_RSS,
        libc::RLIMIT_MEMLOCK,
        libc::RLIMIT_LOCKS,
        libc::RLIMIT_SIGPENDING,
        libc::RLIMIT_MSGQUEUE,
        libc::RLIMIT_NICE,
        libc::RLIMIT_RTPRIO,
        libc::RLIMIT_RTTIME,
    ];
    for resource in resources {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: `getrlimit` / `setrlimit` on a local.
        unsafe {
            if libc::getrlimit(resource as _, &mut limit) == 0 && limit.rlim_max != limit.rlim_cur {
                limit.rlim_max = limit.rlim_cur;
                libc::setrlimit(resource as _, &limit);
            }
        }
    }
    Ok(())
}

/// The Landlock ABI version this kernel offers (0: none).
#[cfg(target_os = "linux")]
pub(crate) fn kernel_abi() -> i64 {
    // SAFETY: `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`
    // only returns a number; it takes no memory.
    let v = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, std::ptr::null::<u8>(), 0usize, 1u32) };
    v.max(0)
}

#[cfg(all(unix, not(target_os = "linux")))]
pub(crate) fn apply(_: &Sandbox, _: std::os::fd::BorrowedFd<'_>, _: &Filters) -> Result<(), SandboxError> {
    Err(SandboxError::Unsupported)
}

#[cfg(all(unix, not(target_os = "linux")))]
pub(crate) fn drop_privileges(_: &Sandbox, _: std::os::fd::BorrowedFd<'_>) -> Result<(), SandboxError> {
    Err(SandboxError::Unsupported)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn contain_always(_: &Filters) -> Result<(), SandboxError> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_host_compiles_each_kind_of_filters_once_and_they_decode_to_the_programs() {
        let strict = Sandbox::strict();
        let first = filters(Some(&strict)).unwrap();
        // The same kind of sandbox (paths do not change a program): the same bytes, not
        // compiled again.
        let again = filters(Some(&strict.clone().allow_read("/tmp"))).unwrap();
        assert!(std::sync::Arc::ptr_eq(&first, &again));
        let loose = filters(Some(&Sandbox::new())).unwrap();
        assert_ne!(first.programs, loose.programs, "the deny-list is another program");
        for sandbox in [None, Some(&strict), Some(&Sandbox::new()), Some(&Sandbox::new().read_only_filesystem())] {
            let sent = filters(sandbox).unwrap();
            assert_eq!(sent.programs.len(), program_count(sandbox));
            // What the runner installs is, instruction by instruction, what the host
            // compiled (seccompiler's program).
            let decoded = decode(&sent, sandbox).unwrap();
            let compiled = programs(sandbox).unwrap();
            assert_eq!(decoded.len(), compiled.len());
            for (d, c) in decoded.iter().zip(&compiled) {
                let fields = |p: &Program| p.iter().map(|op| (op.code, op.jt, op.jf, op.k)).collect::<Vec<_>>();
                assert_eq!(fields(d), fields(c));
            }
        }
    }

    /// Runs a classic BPF program over a `seccomp_data` as the kernel does (the
    /// instructions seccompiler and `compile` use): the action returned, and how many
    /// instructions ran.
    fn run(program: &Program, arch: u32, nr: u32, args: [u64; 6]) -> (u32, usize) {
        let mut data = [0u32; 16];
        data[0] = nr;
        data[1] = arch;
        for (i, arg) in args.iter().enumerate() {
            data[4 + 2 * i] = *arg as u32;
            data[5 + 2 * i] = (*arg >> 32) as u32;
        }
        let (mut pc, mut a) = (0usize, 0u32);
        for steps in 1.. {
            let op = &program[pc];
            let jump = |taken: bool| 1 + if taken { op.jt } else { op.jf } as usize;
            match op.code as u32 {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    a = data[op.k as usize / 4];
                    pc += 1;
                }
                c if c == libc::BPF_ALU | libc::BPF_AND | libc::BPF_K => {
                    a &= op.k;
                    pc += 1;
                }
                c if c == libc::BPF_JMP | libc::BPF_JA => pc += 1 + op.k as usize,
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K => pc += jump(a == op.k),
                c if c == libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K => pc += jump(a >= op.k),
                c if c == libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K => pc += jump(a > op.k),
                c if c == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K => pc += jump(a & op.k != 0),
                c if c == libc::BPF_RET | libc::BPF_K => return (op.k, steps),
                other => panic!("an instruction this test does not run: {other:#x}"),
            }
        }
        unreachable!()
    }

    #[test]
    fn one_search_tree_decides_every_call_as_the_three_chains_did() {
        use seccompiler::{SeccompAction, SeccompFilter, TargetArch};
        let arch = TargetArch::try_from(std::env::consts::ARCH).unwrap();
        let chain = |rules: Rules, matched: SeccompAction, otherwise: SeccompAction| -> Program {
            SeccompFilter::new(rules, otherwise, matched, arch).unwrap().try_into().unwrap()
        };
        // Arguments that the rules look at (ioctl requests, prctl options, clone
        // flags, prlimit's new limit), and others.
        let mut values = vec![0u64, 1, 2, u64::MAX, 0x5356_4d41, 0x4008_6602, libc::PR_SET_PDEATHSIG as u64];
        #[allow(clippy::unnecessary_cast)]
        values.extend([libc::TIOCSTI as u64, libc::FIONBIO as u64, libc::TCGETS as u64]);
        values.extend([libc::CLONE_NEWUSER as u64, libc::CLONE_THREAD as u64 | libc::CLONE_VM as u64, 0x80]);
        let strict = Sandbox::strict();
        let open_allow_list = Sandbox::new().only_needed_system_calls();
        let deny = Sandbox::new();
        let deny_all = Sandbox::new().read_only_filesystem().deny_network().deny_exec();
        for sandbox in [None, Some(&strict), Some(&open_allow_list), Some(&deny), Some(&deny_all)] {
            let plan = plan(sandbox).unwrap();
            // The three filters as they were, seccompiler's chains, in their order.
            let mut before: Vec<Program> = Vec::new();
            if plan.clone3_unimplemented {
                let clone3 = std::iter::once((libc::SYS_clone3, vec![])).collect();
                before.push(chain(clone3, SeccompAction::Errno(libc::ENOSYS as u32), SeccompAction::Allow));
            }
            if plan.x32_refused {
                before.push(x32_guard().unwrap());
            }
            before.push(chain(plan.rules.clone(), plan.matched.clone(), plan.otherwise.clone()));
            let x32_refused = plan.x32_refused;
            let tree = compile(plan).unwrap();
            let native = before.last().unwrap()[1].k; // (`jeq <audit arch>` of its architecture check)
            assert_eq!(tree[1].k, native);
            // What the kernel returns for several filters: the action of the highest
            // precedence (the lowest as a signed number), the latest filter's on a tie.
            let kernel = |nr: u32, args: [u64; 6]| {
                let mut ret: Option<u32> = None;
                let mut steps = 0;
                for filter in before.iter().rev() {
                    let (action, n) = run(filter, native, nr, args);
                    steps += n;
                    let rank = |a: u32| (a & libc::SECCOMP_RET_ACTION_FULL) as i32;
                    if ret.is_none_or(|r| rank(action) < rank(r)) {
                        ret = Some(action);
                    }
                }
                (ret.unwrap(), steps)
            };
            let (mut tree_steps, mut chain_steps) = (0, 0);
            for nr in (0..600).chain([0x4000_0000, 0x4000_0065, u32::MAX]) {
                for &v in &values {
                    for args in [[v; 6], [0, v, 0, 0, 0, 0], [v, 0, 0, 0, 0, 0], [0, 0, v, 0, 0, 0]] {
                        let (got, want) = (run(&tree, native, nr, args), kernel(nr, args));
                        assert_eq!(got.0, want.0, "{sandbox:?}: call {nr}, arguments {args:x?}");
                        tree_steps += got.1;
                        chain_steps += want.1;
                    }
                }
            }
            // The cases the three were for, said outright.
            let errno = |e: i32| libc::SECCOMP_RET_ERRNO | e as u32;
            if sandbox.is_some() {
                assert_eq!(run(&tree, native, libc::SYS_clone3 as u32, [0; 6]).0, errno(libc::ENOSYS));
            }
            if x32_refused {
                assert_eq!(run(&tree, native, 0x4000_0000 | libc::SYS_ptrace as u32, [0; 6]).0, errno(libc::EPERM));
            }
            // A call under another architecture kills the process, as before.
            assert_eq!(run(&tree, native ^ 1, 0, [0; 6]).0, libc::SECCOMP_RET_KILL_PROCESS);
            // And the tree is a search: calls do not walk the whole list (what the
            // kernel does for every number when the filter is installed).
            if before.last().unwrap().len() > 100 {
                assert!(tree_steps * 3 < chain_steps, "{tree_steps} steps in all, against {chain_steps}");
            }
        }
    }

    /// The x32 guard as it was a filter of its own (refusing `nr | 0x40000000` under
    /// the x86_64 architecture).
    fn x32_guard() -> Option<Program> {
        #[cfg(target_arch = "x86_64")]
        {
            use seccompiler::sock_filter;
            const X32: u32 = 0x4000_0000;
            let op = |code: u32, jt: u8, jf: u8, k: u32| sock_filter { code: code as u16, jt, jf, k };
            Some(vec![
                // A = seccomp_data.nr (offset 0)
                op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
                // if (A & X32) deny else allow
                op(libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K, 0, 1, X32),
                op(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
                op(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
            ])
        }
        #[cfg(not(target_arch = "x86_64"))]
        None
    }

    #[test]
    fn a_runner_refuses_filters_that_are_not_what_its_sandbox_installs() {
        let strict = Sandbox::strict();
        let good = (*filters(Some(&strict)).unwrap()).clone();
        let refused = |f: &Filters, sandbox: Option<&Sandbox>| match decode(f, sandbox) {
            Err(SandboxError::Seccomp(why)) => why,
            other => panic!("{other:?}"),
        };
        let other_arch = Filters { arch: "sparc64".into(), ..good.clone() };
        assert!(refused(&other_arch, Some(&strict)).contains("sparc64"));
        // Too few (none: a host that sent nothing must not mean no filter).
        let none = Filters { programs: Vec::new(), ..good.clone() };
        assert!(refused(&none, Some(&strict)).contains("sent 0 filters"));
        let mut cut = good.clone();
        cut.programs[0].pop();
        assert!(refused(&cut, Some(&strict)).contains("is no program"));
        let mut empty = good.clone();
        empty.programs[0].clear();
        assert!(refused(&empty, Some(&strict)).contains("is no program"));
        // More than one (each process installs one).
        let mut two = good.clone();
        two.programs.push(two.programs[0].clone());
        assert!(refused(&two, Some(&strict)).contains("sent 2 filters where this sandbox installs 1"));
        assert_eq!(decode(&good, Some(&strict)).unwrap().len(), 1);
    }
}
