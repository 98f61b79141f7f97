//! Fixture: tries to get out of an isolated plugin's process — on request (see
//! [`Attacker::attack`]'s names below) and while loading (an `.init_array` entry
//! driven by `TOMADA_ATTACK_ON_LOAD`). Each attack is the real system call an
//! attacker would make; results are reported, never hidden. Only ever run isolated.
//! Linux only, as the sandbox is: elsewhere the library is empty.

#![cfg(target_os = "linux")]

use std::ffi::CString;
use std::io::Error;
use std::sync::atomic::{AtomicI32, Ordering};

use attack_api::Attacker;

#[derive(Default)]
struct Attack;

/// A system call's result as an attack result.
fn check(ret: libc::c_long, what: &str) -> Result<String, String> {
    if ret < 0 { Err(format!("{what}: {}", Error::last_os_error())) } else { Ok(format!("{what}: {ret}")) }
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

fn family(name: &str) -> Option<(i32, i32)> {
    Some(match name {
        "inet" => (libc::AF_INET, libc::SOCK_STREAM),
        "inet6" => (libc::AF_INET6, libc::SOCK_STREAM),
        "unix" => (libc::AF_UNIX, libc::SOCK_STREAM),
        "netlink" => (libc::AF_NETLINK, libc::SOCK_RAW),
        "packet" => (libc::AF_PACKET, libc::SOCK_RAW),
        "vsock" => (libc::AF_VSOCK, libc::SOCK_STREAM),
        _ => return None,
    })
}

/// The socket opened by the initialiser (`socket` on load), or -1.
static INIT_SOCKET: AtomicI32 = AtomicI32::new(-1);

/// Forks a process that renames itself `name` and sleeps until killed; with
/// `detach`, it first leaves the session and forks again (a daemon).
fn leave_behind(name: &str, detach: bool) -> Result<String, String> {
    let name = c(name);
    // SAFETY: the child only makes async-signal-safe calls and never returns.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(format!("fork: {}", Error::last_os_error())),
        0 => {
            // SAFETY: plain system calls in the child; it ends in `_exit` or sleeps on.
            unsafe {
                if detach {
                    libc::setsid();
                    if libc::fork() != 0 {
                        libc::_exit(0);
                    }
                }
                libc::prctl(libc::PR_SET_PDEATHSIG, 0);
                libc::prctl(libc::PR_SET_NAME, name.as_ptr());
                loop {
                    libc::pause();
                }
            }
        }
        child => {
            if detach {
                // SAFETY: reaping our own child (the first fork of the daemon).
                unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
            }
            Ok(format!("left {} behind", name.to_string_lossy()))
        }
    }
}

/// Runs a fork that enters new namespaces through the raw `clone3` call.
fn clone3_namespaces() -> Result<String, String> {
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
    }
    let args = CloneArgs {
        flags: (libc::CLONE_NEWUSER | libc::CLONE_NEWNET | libc::CLONE_NEWNS) as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    // SAFETY: a fork-like clone3 (no shared memory, no new stack); the child
    // leaves at once with `_exit`.
    let pid = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
    if pid == 0 {
        // SAFETY: ends the child without running anything else.
        unsafe { libc::_exit(0) }
    }
    if pid > 0 {
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), 0) };
    }
    check(pid, "clone3(NEWUSER|NEWNET|NEWNS)")
}

/// The same through `clone` (what libc falls back to when clone3 is refused).
fn clone_namespaces() -> Result<String, String> {
    let flags = (libc::CLONE_NEWUSER | libc::CLONE_NEWNET | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: a fork-like clone (no CLONE_VM, no stack: the child uses a copy of
    // ours); the child leaves at once with `_exit`.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid == 0 {
        // SAFETY: ends the child without running anything else.
        unsafe { libc::_exit(0) }
    }
    if pid > 0 {
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), 0) };
    }
    check(pid, "clone(NEWUSER|NEWNET)")
}

fn connect_unix(path: &str) -> Result<String, String> {
    std::os::unix::net::UnixStream::connect(path).map(|_| format!("connected to {path}")).map_err(|e| e.to_string())
}

impl Attacker for Attack {
    fn attack(&self, name: &str, arg: &str) -> Result<String, String> {
        let pid = || arg.parse::<i32>().map_err(|e| format!("{arg}: {e}"));
        match name {
            // Network.
            "socket" => {
                let (f, t) = family(arg).ok_or_else(|| format!("unknown family {arg}"))?;
                // SAFETY: `socket` takes integers; the descriptor is closed at once.
                let fd = unsafe { libc::socket(f, t, 0) };
                let r = check(fd as libc::c_long, &format!("socket({arg})"));
                if fd >= 0 {
                    // SAFETY: our own fresh descriptor.
                    unsafe { libc::close(fd) };
                }
                r
            }
            "connect-tcp" => {
                std::net::TcpStream::connect(arg).map(|_| format!("connected to {arg}")).map_err(|e| e.to_string())
            }
            "connect-unix" => connect_unix(arg),
            "connect-abstract" => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(arg).map_err(|e| e.to_string())?;
                std::os::unix::net::UnixStream::connect_addr(&addr)
                    .map(|_| format!("connected to @{arg}"))
                    .map_err(|e| e.to_string())
            }
            "io_uring" => {
                let mut params = [0u8; 120]; // struct io_uring_params
                // SAFETY: io_uring_setup writes at most sizeof(io_uring_params) = 120 bytes.
                let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
                if fd >= 0 {
                    // SAFETY: our own fresh descriptor.
                    unsafe { libc::close(fd as i32) };
                }
                check(fd, "io_uring_setup")
            }
            "init-socket-connect" => {
                let fd = INIT_SOCKET.load(Ordering::SeqCst);
                if fd < 0 {
                    return Err("the initialiser opened no socket".into());
                }
                let addr: std::net::SocketAddrV4 = arg.parse().map_err(|e| format!("{arg}: {e}"))?;
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: addr.port().to_be(),
                    sin_addr: libc::in_addr { s_addr: u32::from(*addr.ip()).to_be() },
                    sin_zero: [0; 8],
                };
                // SAFETY: a valid sockaddr_in of the size given.
                let r = unsafe {
                    libc::connect(fd, (&sin as *const libc::sockaddr_in).cast(), std::mem::size_of_val(&sin) as u32)
                };
                check(r as libc::c_long, "connect(socket opened while loading)")
            }
            // The terminal.
            "tty" => std::fs::File::open("/dev/tty").map(|_| "opened /dev/tty".into()).map_err(|e| e.to_string()),
            "tiocsti" => {
                // arg: "device|text"
                let (device, text) = arg.split_once('|').ok_or("arg is device|text")?;
                let tty = std::fs::OpenOptions::new().read(true).write(true).open(device).map_err(|e| e.to_string())?;
                use std::os::fd::AsRawFd;
                for b in text.bytes() {
                    // SAFETY: TIOCSTI reads one byte from the pointer given.
                    let r = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSTI, &b as *const u8) };
                    if r < 0 {
                        return Err(format!("ioctl(TIOCSTI): {}", Error::last_os_error()));
                    }
                }
                Ok(format!("typed {} bytes into {device}", text.len()))
            }
            // The filesystem.
            "read" => std::fs::read(arg).map(|b| format!("read {} bytes of {arg}", b.len())).map_err(|e| e.to_string()),
            "write" => std::fs::write(arg, b"escaped\n").map(|()| format!("wrote {arg}")).map_err(|e| e.to_string()),
            "truncate" => {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(arg)
                    .and_then(|f| f.set_len(0))
                    .map_err(|e| e.to_string())?;
                Ok(format!("truncated {arg}"))
            }
            "truncate-path" => {
                // SAFETY: a NUL-terminated path.
                check(unsafe { libc::truncate(c(arg).as_ptr(), 0) } as libc::c_long, "truncate")
            }
            // SAFETY: NUL-terminated paths, plain integers and null pointers the kernel checks.
            "chmod" => check(unsafe { libc::chmod(c(arg).as_ptr(), 0o777) } as libc::c_long, "chmod"),
            // No permission for anyone: what would make another process's load of a
            // file shared with it fail.
            // SAFETY: NUL-terminated paths, plain integers and null pointers the kernel checks.
            "chmod-none" => check(unsafe { libc::chmod(c(arg).as_ptr(), 0) } as libc::c_long, "chmod"),
            // SAFETY: NUL-terminated paths, plain integers and null pointers the kernel checks.
            "chown" => check(unsafe { libc::chown(c(arg).as_ptr(), 1, 1) } as libc::c_long, "chown"),
            // SAFETY: NUL-terminated paths, plain integers and null pointers the kernel checks.
            "utime" => check(unsafe { libc::utimes(c(arg).as_ptr(), std::ptr::null()) } as libc::c_long, "utimes"),
            "setxattr" => check(
                // SAFETY: NUL-terminated strings, a 1-byte value.
                unsafe { libc::setxattr(c(arg).as_ptr(), c("user.tomada").as_ptr(), b"x".as_ptr().cast(), 1, 0) }
                    as libc::c_long,
                "setxattr",
            ),
            "mount" => check(
                // SAFETY: NUL-terminated strings; no data.
                unsafe { libc::mount(c("none").as_ptr(), c(arg).as_ptr(), c("tmpfs").as_ptr(), 0, std::ptr::null()) }
                    as libc::c_long,
                "mount",
            ),
            "env" => {
                let names: Vec<String> = std::env::vars_os().map(|(k, _)| k.to_string_lossy().into_owned()).collect();
                Ok(names.join(","))
            }
            // Other processes.
            // SAFETY: `kill` with signal 0 only checks permission: nothing is sent.
            "signal" => check(unsafe { libc::kill(pid()?, 0) } as libc::c_long, "kill(pid, 0)"),
            // SAFETY: as above, for the process group.
            "signal-group" => check(unsafe { libc::kill(-pid()?, 0) } as libc::c_long, "kill(-pgid, 0)"),
            "ptrace" => {
                let target = pid()?;
                // SAFETY: PTRACE_SEIZE does not stop the target; detached at once.
                let r = unsafe { libc::ptrace(libc::PTRACE_SEIZE, target, 0, 0) };
                if r == 0 {
                    // SAFETY: detaching the process we just seized.
                    unsafe { libc::ptrace(libc::PTRACE_DETACH, target, 0, 0) };
                }
                check(r, "ptrace(PTRACE_SEIZE)")
            }
            "proc-mem" => std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(format!("/proc/{arg}/mem"))
                .map(|_| format!("opened /proc/{arg}/mem for writing"))
                .map_err(|e| e.to_string()),
            "process_vm_readv" => {
                let mut byte = 0u8;
                let local = libc::iovec { iov_base: (&mut byte as *mut u8).cast(), iov_len: 1 };
                let remote = libc::iovec { iov_base: 0x1000 as *mut libc::c_void, iov_len: 1 };
                // SAFETY: writes at most one byte into `byte`.
                let r = unsafe { libc::process_vm_readv(pid()?, &local, 1, &remote, 1, 0) };
                match Error::last_os_error().raw_os_error() {
                    // The address was bad, but the call was allowed: it reaches the target.
                    Some(libc::EFAULT) if r < 0 => Ok("process_vm_readv reaches the target (EFAULT)".into()),
                    _ => check(r as libc::c_long, "process_vm_readv"),
                }
            }
            "pdeathsig" => {
                // SAFETY: integers only.
                check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0) } as libc::c_long, "prctl(PR_SET_PDEATHSIG, 0)")
            }
            "fork" => leave_behind(arg, false),
            "daemon" => leave_behind(arg, true),
            "exec" => std::process::Command::new("/bin/sh")
                .args(["-c", arg])
                .status()
                .map(|s| format!("ran /bin/sh: {s}"))
                .map_err(|e| e.to_string()),
            // Namespaces and kernel surface.
            "unshare" => {
                let flag = match arg {
                    "user" => libc::CLONE_NEWUSER,
                    "net" => libc::CLONE_NEWNET,
                    "mount" => libc::CLONE_NEWNS,
                    _ => return Err(format!("unknown namespace {arg}")),
                };
                // SAFETY: integers only.
                check(unsafe { libc::unshare(flag) } as libc::c_long, "unshare")
            }
            "clone3-ns" => clone3_namespaces(),
            "clone-ns" => clone_namespaces(),
            // SAFETY: NUL-terminated paths, plain integers and null pointers the kernel checks.
            "keyctl" => check(unsafe { libc::syscall(libc::SYS_keyctl, 0, -3i32, 1) }, "keyctl"),
            // SAFETY: NUL-terminated paths, plain integers and null pointers the kernel checks.
            "bpf" => check(unsafe { libc::syscall(libc::SYS_bpf, 0, 0usize, 0u32) }, "bpf"),
            // SAFETY: NUL-terminated paths, plain integers and null pointers the kernel checks.
            "userfaultfd" => check(unsafe { libc::syscall(libc::SYS_userfaultfd, 0) }, "userfaultfd"),
            "big" => Ok("x".repeat(arg.parse().map_err(|e| format!("{arg}: {e}"))?)),
            "forge-frame" => {
                // A reply header claiming `arg` bytes, written straight into the shared
                // ring the frames go through (descriptor 6), past the runner's back.
                let len: u32 = arg.parse().map_err(|e| format!("{arg}: {e}"))?;
                let mut header = len.to_le_bytes().to_vec();
                header.extend_from_slice(&[6, 0]);
                header.extend_from_slice(&1u64.to_le_bytes());
                forge(&header)
            }
            "forge-frame-socket" => {
                // The same header on the socket (descriptor 3), where nothing may come
                // after the handshake.
                let len: u32 = arg.parse().map_err(|e| format!("{arg}: {e}"))?;
                let mut header = len.to_le_bytes().to_vec();
                header.extend_from_slice(&[6, 0]);
                header.extend_from_slice(&1u64.to_le_bytes());
                // SAFETY: writes the header's bytes to descriptor 3, which stays open.
                let written =
                    check(unsafe { libc::write(3, header.as_ptr().cast(), header.len()) } as libc::c_long, "write");
                // The host looks at the socket when it waits: no answer comes, so it
                // does, however late, and kills this process (or the deadline does).
                written?;
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            }
            "corrupt-ring" => {
                // The child's ring claims more bytes than it can hold.
                with_ring(|tail, _head, _data| {
                    let now = tail.load(Ordering::Acquire);
                    tail.store(now + (1 << 30), Ordering::Release);
                    let one = 1u64;
                    // SAFETY: writes 8 bytes from a local to the host's bell.
                    unsafe { libc::write(7, (&raw const one).cast(), 8) };
                    // The host kills this process when it sees the ring: no answer
                    // comes to overwrite the lie before it looks, however late.
                    loop {
                        std::thread::sleep(std::time::Duration::from_secs(1));
                    }
                })
            }
            "whoami" => Ok(format!("pid {} ppid {}", std::process::id(), std::os::unix::process::parent_id())),
            // (`arg`: how many calls of `meet` this process had in all when it returns.)
            "meet" => meet(arg.parse().map_err(|e| format!("{arg}: {e}"))?),
            // Other files at the dormant lanes' descriptors (11 and up), or none.
            "replace-lanes" => replace_lanes(arg),
            "fill-nudge" => fill_nudge(),
            "fill-bells" => fill(&[7, 8, 9, 10]),
            // (`arg`: another ring's memory or bell, e.g. a lane's; by default the main one's.)
            "claim-full" => claim_full(arg.parse().unwrap_or(6)),
            "bell-flood" => bell_flood(arg.parse().unwrap_or(7)),
            "lent-go" => {
                LENT_GO.store(true, Ordering::SeqCst);
                Ok("go".to_owned())
            }
            "lent-parent" => lent_parent(),
            // Root in the sandbox (issue 16, item 6), namespaces and tree limits (7, 8).
            "creds" => {
                let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
                let keep = ["Uid:", "Gid:", "Groups:", "Cap", "NoNewPrivs:", "Seccomp:"];
                let lines: Vec<&str> = status.lines().filter(|l| keep.iter().any(|k| l.starts_with(k))).collect();
                Ok(lines.join("\n"))
            }
            "fanotify" => {
                // FAN_CLASS_CONTENT (permission events: freezes others' `open`), O_RDONLY.
                // SAFETY: integers only; the descriptor is closed at once.
                let fd = unsafe { libc::syscall(libc::SYS_fanotify_init, 0x4u32, libc::O_RDONLY as u32) };
                if fd >= 0 {
                    // SAFETY: our own fresh descriptor.
                    unsafe { libc::close(fd as i32) };
                }
                check(fd, "fanotify_init(FAN_CLASS_CONTENT)")
            }
            "setflags" => {
                // FS_IOC_SETFLAGS with FS_IMMUTABLE_FL on `arg`.
                use std::os::fd::AsRawFd;
                let file = std::fs::File::open(arg).map_err(|e| e.to_string())?;
                let mut flags: libc::c_long = 0;
                // SAFETY: FS_IOC_GETFLAGS writes one long.
                unsafe { libc::ioctl(file.as_raw_fd(), 0x8008_6601u64 as _, &mut flags) };
                flags |= 0x10; // FS_IMMUTABLE_FL
                // SAFETY: FS_IOC_SETFLAGS reads one long.
                let r = unsafe { libc::ioctl(file.as_raw_fd(), 0x4008_6602u64 as _, &flags) };
                check(r as libc::c_long, "ioctl(FS_IOC_SETFLAGS, IMMUTABLE)")
            }
            "file_setattr" => {
                // file_setattr(AT_FDCWD, arg, 0, &{fa_xflags: FS_XFLAG_IMMUTABLE}, 20).
                let attr = [0x8u32, 0, 0, 0, 0];
                // SAFETY: a NUL-terminated path and a 20-byte struct the kernel reads.
                let r = unsafe { libc::syscall(469, libc::AT_FDCWD, c(arg).as_ptr(), 0u32, attr.as_ptr(), 20usize) };
                check(r, "file_setattr(IMMUTABLE)")
            }
            "sched-fifo" => {
                let param = libc::sched_param { sched_priority: 1 };
                // SAFETY: integers and a local; undone at once if it worked.
                let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
                if r == 0 {
                    let other = libc::sched_param { sched_priority: 0 };
                    // SAFETY: as above.
                    unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &other) };
                }
                check(r as libc::c_long, "sched_setscheduler(SCHED_FIFO)")
            }
            "sched-attr" => {
                // struct sched_attr: size, policy, flags, nice, priority, then times.
                let mut attr = [0u32; 14];
                attr[0] = 56;
                attr[1] = libc::SCHED_FIFO as u32;
                attr[5] = 1;
                // SAFETY: a 56-byte struct the kernel reads.
                let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, attr.as_ptr(), 0u32) };
                if r == 0 {
                    let other = libc::sched_param { sched_priority: 0 };
                    // SAFETY: integers and a local.
                    unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &other) };
                }
                check(r, "sched_setattr(SCHED_FIFO)")
            }
            "raise-limit" | "raise-limit-raw" => {
                let resource = match arg {
                    "as" => libc::RLIMIT_AS,
                    "nproc" => libc::RLIMIT_NPROC,
                    "nofile" => libc::RLIMIT_NOFILE,
                    "cpu" => libc::RLIMIT_CPU,
                    _ => return Err(format!("unknown limit {arg}")),
                };
                let mut now = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                // SAFETY: writes a local.
                unsafe { libc::getrlimit(resource, &mut now) };
                let higher = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
                let r = if name == "raise-limit" {
                    // SAFETY: reads a local (glibc: prlimit64).
                    unsafe { libc::setrlimit(resource, &higher) as libc::c_long }
                } else {
                    // SAFETY: the raw x86_64 `setrlimit` call, reading a local.
                    unsafe { libc::syscall(libc::SYS_setrlimit, resource, &higher) }
                };
                check(r, &format!("raise {arg} from {}/{}", now.rlim_cur, now.rlim_max))
            }
            // `open_tree_attr(AT_FDCWD, "/", OPEN_TREE_CLONE, NULL, 0)`.
            "open_tree_attr" => check(
                // SAFETY: a NUL-terminated path; no attributes.
                unsafe { libc::syscall(467, libc::AT_FDCWD, c("/").as_ptr(), 1u32, std::ptr::null::<u8>(), 0usize) },
                "open_tree_attr",
            ),
            "quotactl_fd" => {
                use std::os::fd::AsRawFd;
                let root = std::fs::File::open(if arg.is_empty() { "/" } else { arg }).map_err(|e| e.to_string())?;
                let mut fmt = 0u32;
                // Q_GETFMT (0x800004) on the root's filesystem.
                // SAFETY: Q_GETFMT writes 4 bytes into `fmt`.
                let r = unsafe { libc::syscall(443, root.as_raw_fd(), 0x80_0004u32, 0u32, &mut fmt) };
                match Error::last_os_error().raw_os_error() {
                    // Not a quota filesystem, but the call reached it.
                    Some(libc::ESRCH | libc::ENOSYS | libc::EINVAL) if r < 0 => {
                        Ok(format!("quotactl_fd reached the filesystem ({})", Error::last_os_error()))
                    }
                    _ => check(r, "quotactl_fd"),
                }
            }
            // SAFETY: no arguments (without a controlling terminal it hangs nothing up).
            "vhangup" => check(unsafe { libc::syscall(libc::SYS_vhangup) }, "vhangup"),
            "mlockall" => {
                // SAFETY: integers only; undone at once if it worked.
                let r = unsafe { libc::mlockall(libc::MCL_CURRENT) };
                if r == 0 {
                    // SAFETY: no arguments.
                    unsafe { libc::munlockall() };
                }
                check(r as libc::c_long, "mlockall")
            }
            "setpriority" => {
                // SAFETY: integers only; undone at once if it worked.
                let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, -20) };
                if r == 0 {
                    // SAFETY: as above.
                    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 0) };
                }
                check(r as libc::c_long, "setpriority(-20)")
            }
            // SAFETY: the x32 `getpid` (no arguments).
            "x32" => check(unsafe { libc::syscall(0x4000_0000 | libc::SYS_getpid) }, "x32 getpid"),
            "int80" => {
                #[cfg(target_arch = "x86_64")]
                {
                    let mut ret: i64 = 20; // the i386 `getpid`
                    // SAFETY: the legacy 32-bit system-call gate with no memory arguments.
                    unsafe { std::arch::asm!("int 0x80", inout("rax") ret, options(nostack)) };
                    check(ret as libc::c_long, "int 0x80 getpid")
                }
                #[cfg(not(target_arch = "x86_64"))]
                Err("x86_64 only".to_owned())
            }
            "shm-attach" => {
                let key: i32 = arg.parse().map_err(|e| format!("{arg}: {e}"))?;
                // SAFETY: integers only.
                let id = unsafe { libc::shmget(key, 0, 0) };
                if id < 0 {
                    return Err(format!("shmget({key}): {}", Error::last_os_error()));
                }
                // SAFETY: attaches the segment read-only; read one byte; detached.
                unsafe {
                    let at = libc::shmat(id, std::ptr::null(), libc::SHM_RDONLY);
                    if at as isize == -1 {
                        return Err(format!("shmat: {}", Error::last_os_error()));
                    }
                    let byte = *(at as *const u8);
                    libc::shmdt(at);
                    Ok(format!("attached the host's segment: first byte {byte}"))
                }
            }
            "shm-make" => {
                let (key, bytes) = arg.split_once(':').ok_or("arg is key:bytes")?;
                let key: i32 = key.parse().map_err(|e| format!("{key}: {e}"))?;
                let bytes: usize = bytes.parse().map_err(|e| format!("{bytes}: {e}"))?;
                // SAFETY: integers only.
                let id = unsafe { libc::shmget(key, bytes, libc::IPC_CREAT | 0o600) };
                check(id as libc::c_long, "shmget(IPC_CREAT)")
            }
            "namespaces" => {
                let ns = ["ipc", "net", "pid", "user"].map(|n| {
                    std::fs::read_link(format!("/proc/self/ns/{n}"))
                        .map(|l| l.to_string_lossy().into_owned())
                        .unwrap_or_else(|e| format!("{n}:{e}"))
                });
                Ok(ns.join(" "))
            }
            "syscall" => {
                // A raw system call by number, without arguments (e.g. one Linux does
                // not have yet).
                let nr: libc::c_long = arg.parse().map_err(|e| format!("{arg}: {e}"))?;
                // SAFETY: a call by number with zero arguments.
                check(unsafe { libc::syscall(nr, 0usize, 0usize, 0usize) }, &format!("syscall {nr}"))
            }
            "fork-many" => {
                // Forks up to `arg` sleeping children; reports how many it got, then
                // ends them.
                let want: usize = arg.parse().map_err(|e| format!("{arg}: {e}"))?;
                let mut children = Vec::new();
                let mut error = String::new();
                for _ in 0..want {
                    // SAFETY: the child only pauses until killed.
                    match unsafe { libc::fork() } {
                        -1 => {
                            error = Error::last_os_error().to_string();
                            break;
                        }
                        // SAFETY: plain system calls; the child never returns.
                        0 => unsafe {
                            loop {
                                libc::pause();
                            }
                        },
                        pid => children.push(pid),
                    }
                }
                for &pid in &children {
                    // SAFETY: our own children: killed, then reaped.
                    unsafe {
                        libc::kill(pid, libc::SIGKILL);
                        libc::waitpid(pid, std::ptr::null_mut(), 0);
                    }
                }
                Ok(format!("forked {} {error}", children.len()))
            }
            _ => Err(format!("unknown attack {name}")),
        }
    }

    fn lend(&self, name: &str, probe: &dyn attack_api::Probe) -> Result<String, String> {
        match name {
            // Holds the call in the host: the probe's `touch` (within this call)
            // returns when the host lets it.
            "hold" => Ok(format!("held {}", probe.touch())),
            // A callback within this call (`touch`) that the host makes wait for
            // another, made from a thread of the plugin's own (`mark`, within no call).
            "within-and-outside" => {
                let id = find_lent()?;
                let peer = tomada::remote::current_peer().ok_or("no peer")?;
                std::thread::spawn(move || {
                    let _ = peer.call(id, MARK_METHOD, Vec::new());
                });
                Ok(format!("touched {}", probe.touch()))
            }
            _ => lend(name),
        }
    }
}

tomada::export!(Attack as Attacker);

/// The layout of the channel's shared memory (tomada-host's `isolate::shm`): two
/// rings of a 4 KiB control page and 2 MiB of data, the child's second; in a
/// control page (words 128 bytes apart) the writer's tail at 0, `published` at 128,
/// `writer_waiting` at 256, the reader's head at 384.
const CONTROL: usize = 4096;
const CAPACITY: usize = 2 * 1024 * 1024;
const RING: usize = CONTROL + CAPACITY;

/// The reader's head in a ring's control page.
const HEAD: usize = 384;

/// Maps descriptor 6 and runs `f` on the child's ring: its tail, head and data.
fn with_ring(
    f: impl FnOnce(&std::sync::atomic::AtomicU64, &std::sync::atomic::AtomicU64, *mut u8) -> Result<String, String>,
) -> Result<String, String> {
    // SAFETY: a new shared mapping of descriptor 6 (the channel's memfd, sealed at
    // this size); a failure is reported.
    let base = unsafe {
        libc::mmap(std::ptr::null_mut(), 2 * RING, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, 6, 0)
    };
    if base == libc::MAP_FAILED {
        return Err(format!("mmap: {}", Error::last_os_error()));
    }
    let ring = base.cast::<u8>().wrapping_add(RING);
    // SAFETY: the control page's words are 8-byte aligned atomics within the mapping.
    let (tail, head) = unsafe {
        (&*ring.cast::<std::sync::atomic::AtomicU64>(), &*ring.add(HEAD).cast::<std::sync::atomic::AtomicU64>())
    };
    // SAFETY: the data follows the control page, within the mapping.
    let result = f(tail, head, unsafe { ring.add(CONTROL) });
    // SAFETY: our own mapping (kept if the process is killed meanwhile: it ends).
    unsafe { libc::munmap(base, 2 * RING) };
    result
}

/// Writes `bytes` into the child's ring as if they were a frame, rings the host's
/// bell (descriptor 7), and waits until the host has read them (it kills this process
/// if it refuses them).
fn forge(bytes: &[u8]) -> Result<String, String> {
    with_ring(|tail, head, data| {
        let at = tail.load(Ordering::Acquire);
        for (i, b) in bytes.iter().enumerate() {
            // SAFETY: within the ring's data (the offset wraps at its capacity).
            unsafe { data.add((at as usize + i) % CAPACITY).write_volatile(*b) };
        }
        let end = at + bytes.len() as u64;
        tail.store(end, Ordering::Release);
        let one = 1u64;
        // SAFETY: writes 8 bytes from a local to the host's bell.
        unsafe { libc::write(7, (&raw const one).cast(), 8) };
        let started = std::time::Instant::now();
        while head.load(Ordering::Acquire) < end && started.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::yield_now();
        }
        Ok(format!("forged {} bytes; the host read to {}", bytes.len(), head.load(Ordering::Acquire)))
    })
}

/// Runs while the library loads: the attacks `TOMADA_ATTACK_ON_LOAD` names
/// (comma-separated): `exec:PATH` (run `/bin/sh` to write PATH), `socket` (open an
/// internet socket, kept for `init-socket-connect`), `helper:PATH` (fork a helper
/// that writes PATH through `/bin/sh` a moment later, then `PATH.tried` by itself,
/// whether the shell ran or not), `say:TEXT` (print TEXT on
/// stderr), `abort`, `exit:CODE`.
extern "C" fn attack_on_load() {
    let Some(plan) = std::env::var_os("TOMADA_ATTACK_ON_LOAD") else { return };
    for step in plan.to_string_lossy().split(',') {
        let (what, arg) = step.split_once(':').unwrap_or((step, ""));
        match what {
            "exec" => {
                let _ = std::process::Command::new("/bin/sh").args(["-c", &format!("echo ran > {arg}")]).status();
            }
            "socket" => {
                // SAFETY: `socket` takes integers.
                INIT_SOCKET.store(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) }, Ordering::SeqCst);
            }
            // SAFETY: the child sleeps, tries the exec, and leaves with `_exit`.
            "helper" if unsafe { libc::fork() } == 0 => {
                {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    let _ = std::process::Command::new("/bin/sh").args(["-c", &format!("echo ran > {arg}")]).status();
                    // Says it tried (no exec needed), so a test can wait for that.
                    let _ = std::fs::write(format!("{arg}.tried"), b"");
                    // SAFETY: ends the helper.
                    unsafe { libc::_exit(0) }
                }
            }
            "say" => eprintln!("{arg}"),
            "abort" => std::process::abort(),
            "exit" => std::process::exit(arg.parse().unwrap_or(1)),
            _ => {}
        }
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static ATTACK_ON_LOAD: extern "C" fn() = attack_on_load;

/// Fills each of `fds` as a counter (an eventfd) would be filled: made blocking first
/// (`O_NONBLOCK` cleared, which on a descriptor shared with the host clears it for the
/// host too), then written up to its limit: 2^64 - 2 for an eventfd, full for a pipe.
/// Reports what it could do to each.
fn fill(fds: &[i32]) -> Result<String, String> {
    let mut report = Vec::new();
    let mut any = false;
    for &fd in fds {
        // SAFETY: `fcntl` on a descriptor number; a bad one fails.
        unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
        let most = u64::MAX - 1;
        // SAFETY: 8 bytes from a local; as an eventfd's counter: at its limit at once.
        let r = unsafe { libc::write(fd, (&raw const most).cast(), 8) };
        let mut written = usize::from(r == 8) * 8;
        if r < 0 && Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
            written = 0; // (an eventfd at its limit already)
        }
        // A pipe: filled until it refuses (non-blocking here, so this ends).
        if r == 8 {
            loop {
                let chunk = [1u8; 4096];
                // SAFETY: a local buffer's bytes.
                let n = unsafe { libc::write(fd, chunk.as_ptr().cast(), chunk.len()) };
                if n <= 0 {
                    break;
                }
                written += n as usize;
            }
        }
        // Then made blocking, for whoever writes next.
        // SAFETY: `fcntl` on a descriptor number; a bad one fails.
        unsafe { libc::fcntl(fd, libc::F_SETFL, 0) };
        if r < 0 {
            report.push(format!("fd {fd}: {}", Error::last_os_error()));
        } else {
            any = true;
            report.push(format!("fd {fd}: filled ({written} bytes)"));
        }
    }
    if any { Ok(report.join("; ")) } else { Err(report.join("; ")) }
}

/// Makes the host believe its ring is full: the host's ring (the first) claims to
/// have been read up to exactly one ring's capacity behind what the host wrote, so
/// every byte the host sends next waits for room that never comes.
fn claim_full(fd: i32) -> Result<String, String> {
    // SAFETY: a new shared mapping of descriptor `fd` (6: the main rings'), as in `with_ring`.
    let base = unsafe {
        libc::mmap(std::ptr::null_mut(), 2 * RING, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0)
    };
    if base == libc::MAP_FAILED {
        return Err(format!("mmap: {}", Error::last_os_error()));
    }
    let ring = base.cast::<u8>();
    // SAFETY: the control page's words are 8-byte aligned atomics within the mapping
    // (kept mapped: the process ends with it).
    let (tail, head) = unsafe {
        (&*ring.cast::<std::sync::atomic::AtomicU64>(), &*ring.add(HEAD).cast::<std::sync::atomic::AtomicU64>())
    };
    let claimed = tail.load(Ordering::Acquire).wrapping_sub(CAPACITY as u64);
    head.store(claimed, Ordering::Release);
    Ok(format!("the host's ring looks full (head {claimed})"))
}

/// Rings the host's bell (descriptor `fd`, 7: the main rings') without end and sends
/// nothing: the host waits for this call's answer meanwhile, which never comes.
fn bell_flood(fd: i32) -> Result<String, String> {
    let one = 1u64;
    let mut rings = 0u64;
    loop {
        // SAFETY: writes 8 bytes from a local to the host's bell (a full one refuses).
        unsafe { libc::write(fd, (&raw const one).cast(), 8) };
        rings += 1;
        if rings == u64::MAX {
            return Ok("rang without end".to_owned());
        }
    }
}

/// Set by `attack("lent-go")`, made by the host from within the lent object's method:
/// the host's method is running, the lending call may return.
static LENT_GO: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// The number of the lent object (0: not found yet), for `lent-parent`.
static LENT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// What the host's `Probe::mark` answers (the host test's choice).
const MARK: u64 = 0x7e57_1e47;
/// `Probe`'s methods, by number (in declaration order).
const MARK_METHOD: u32 = 0;
const TOUCH_METHOD: u32 = 1;

/// Finds the number of the lent probe by trying the host's object numbers (small
/// integers counted from 1) from within the lending call.
fn find_lent() -> Result<u64, String> {
    let peer = tomada::remote::current_peer().ok_or("no peer")?;
    (1..=64)
        .find(|&id| peer.call(id, MARK_METHOD, Vec::new()).is_ok_and(|b| b == MARK.to_le_bytes()))
        .ok_or_else(|| "no lent probe among objects 1 to 64".to_owned())
}

/// Waits for `LENT_GO` (no longer than a minute: a hang guard).
fn wait_go() -> Result<(), String> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !LENT_GO.load(Ordering::SeqCst) {
        if std::time::Instant::now() > until {
            return Err("the host never said go".to_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(())
}

/// Attacks on a lent object, by route: `outside` calls it from a thread of the plugin's
/// own (a callback made within no call of the host), and returns once the host's
/// method runs; `parent` publishes its number for another call in flight
/// (`lent-parent`) to call it, naming itself as the parent, and returns likewise.
fn lend(name: &str) -> Result<String, String> {
    let id = find_lent()?;
    match name {
        "outside" => {
            let peer = tomada::remote::current_peer().ok_or("no peer")?;
            std::thread::spawn(move || {
                // Its answer (or error) is not for anyone: the call it was lent for is over.
                let _ = peer.call(id, TOUCH_METHOD, Vec::new());
            });
        }
        "parent" => LENT_ID.store(id, Ordering::SeqCst),
        other => return Err(format!("unknown route {other}")),
    }
    wait_go()?;
    Ok(format!("lent object {id} is being called after its call"))
}

/// From another call in flight: calls the object lent to `lend("parent")`.
fn lent_parent() -> Result<String, String> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let id = loop {
        match LENT_ID.load(Ordering::SeqCst) {
            0 if std::time::Instant::now() > until => return Err("nothing was lent".to_owned()),
            0 => std::thread::sleep(std::time::Duration::from_millis(1)),
            id => break id,
        }
    };
    let peer = tomada::remote::current_peer().ok_or("no peer")?;
    let touched = peer.call(id, TOUCH_METHOD, Vec::new());
    // (The lending call may return now, if the host's method did not say so already.)
    LENT_GO.store(true, Ordering::SeqCst);
    match touched {
        Ok(b) => Ok(format!("touched object {id}: {b:?}")),
        Err(e) => Err(format!("touching object {id}: {e}")),
    }
}

/// Fills the nudge (descriptor 5) and stops this process from taking what is in it:
/// descriptor 5 is replaced by a pipe nobody writes, so the runner's pool, once its
/// read in progress returns, waits there for good; the nudge is then filled through a
/// duplicate (an eventfd to 2^64 - 2, a pipe to the brim), made blocking, and topped
/// up by what that last read took. The host's next nudge finds it full.
fn fill_nudge() -> Result<String, String> {
    // SAFETY: plain descriptor calls; failures are reported.
    let mine = unsafe { libc::dup(5) };
    if mine < 0 {
        return Err(format!("fd 5: {}", Error::last_os_error()));
    }
    let mut idle = [0; 2];
    // SAFETY: `pipe` writes two new descriptors into the local array (both kept open,
    // so a read of the first waits for good).
    if unsafe { libc::pipe(idle.as_mut_ptr()) } != 0 || unsafe { libc::dup2(idle[0], 5) } < 0 {
        return Err(format!("replacing fd 5: {}", Error::last_os_error()));
    }
    let report = fill(&[mine])?;
    // An eventfd: the pool's read in progress took one post; put it back (a blocking
    // write, which returns once that read has taken its post). (A pipe frees room a
    // page at a time: one read leaves it full.)
    // SAFETY: `fstat` writes into a zeroed local.
    let mut stat = unsafe { std::mem::zeroed::<libc::stat>() };
    // SAFETY: as above.
    if unsafe { libc::fstat(mine, &mut stat) } == 0 && stat.st_mode & libc::S_IFMT != libc::S_IFIFO {
        let one = 1u64;
        // SAFETY: 8 bytes from a local.
        unsafe { libc::write(mine, (&raw const one).cast(), 8) };
    }
    Ok(report.replace(&format!("fd {mine}"), "fd 5"))
}

/// Waits until `meet` was called `count` times in this process (or 25 s: a hang
/// guard), so that calls from several host threads are inside at once.
fn meet(count: u32) -> Result<String, String> {
    static MET: (std::sync::Mutex<u32>, std::sync::Condvar) = (std::sync::Mutex::new(0), std::sync::Condvar::new());
    let mut inside = MET.0.lock().map_err(|e| e.to_string())?;
    *inside += 1;
    MET.1.notify_all();
    let (_inside, waited) = MET
        .1
        .wait_timeout_while(inside, std::time::Duration::from_secs(25), |inside| *inside < count)
        .map_err(|e| e.to_string())?;
    if waited.timed_out() { Err(format!("only {} of {count} calls met", *_inside)) } else { Ok("met".to_owned()) }
}

/// Puts `/dev/null` at descriptors 11 to 42, where the host passed the dormant lanes'
/// memory and bells (`how`: "null"), or closes them ("close"), or closes those from
/// `N` on ("close-from:N").
fn replace_lanes(how: &str) -> Result<String, String> {
    let null = if how == "null" { Some(std::fs::File::open("/dev/null").map_err(|e| e.to_string())?) } else { None };
    let null_fd = null.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
    let from = match how.strip_prefix("close-from:") {
        Some(n) => n.parse().map_err(|e| format!("{n}: {e}"))?,
        None => 11,
    };
    for fd in (from..=42).filter(|&fd| Some(fd) != null_fd) {
        if let Some(null) = null_fd {
            // SAFETY: a plain call on descriptor numbers; the runner's files there are
            // what this attack takes away from it.
            unsafe { libc::dup2(null, fd) };
        } else {
            // SAFETY: as above.
            unsafe { libc::close(fd) };
        }
    }
    Ok(format!("{how}: {from}-42"))
}
