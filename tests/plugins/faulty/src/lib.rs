//! Fixture: misbehaves on request (see `fault-api`). Only ever run isolated, except
//! for its harmless methods. On Windows the methods that touch Unix descriptors do
//! nothing (`close_socket`, `spawn_detached_sleeper`) or only hang
//! (`corrupt_channel`).

use std::io::Write;
#[cfg(unix)]
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use fault_api::Faulty;

#[derive(Default)]
struct Bad {
    sleeping: AtomicU32,
    most_sleeping: AtomicU32,
    met: (Mutex<u32>, Condvar),
}

impl Faulty for Bad {
    fn echo(&self, s: &str) -> String {
        s.to_owned()
    }
    fn pid(&self) -> u32 {
        std::process::id()
    }
    fn print(&self, line: &str) {
        println!("{line}");
        eprintln!("{line} (stderr)");
        let _ = std::io::stdout().flush();
    }
    fn panic(&self, message: &str) -> u8 {
        panic!("{message}")
    }
    fn abort(&self) {
        std::process::abort()
    }
    fn segfault(&self) {
        // SAFETY: none: this fixture crashes on purpose, to prove a host survives it.
        #[allow(clippy::zero_ptr)]
        unsafe {
            std::ptr::write_volatile(std::hint::black_box(std::ptr::null_mut::<u8>()), 1)
        }
    }
    fn exit(&self, code: i32) {
        std::process::exit(code)
    }
    fn hang(&self) {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
    fn allocate(&self) -> u64 {
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        loop {
            blocks.push(vec![1u8; 1 << 20]);
            if blocks.len() > 1 << 20 {
                return blocks.len() as u64;
            }
        }
    }
    fn close_socket(&self) {
        #[cfg(unix)]
        // SAFETY: descriptor 3 is the runner's socket; closing it is the misbehaviour
        // under test.
        drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(3) });
    }
    fn corrupt_channel(&self) {
        #[cfg(unix)]
        {
            // SAFETY: as above; the file is forgotten so the descriptor stays open.
            let mut socket = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(3) });
            let _ = socket.write_all(b"\xff\xff\xff\x7fgarbage");
        }
        // The host reads the socket when it waits (frames go through shared memory):
        // no answer comes, so it sees this, however late it looks, and ends the
        // process (or, failing that, the call's deadline does).
        self.hang();
    }
    fn try_network(&self) -> Result<String, String> {
        std::net::TcpListener::bind("127.0.0.1:0")
            .map(|l| format!("bound {:?}", l.local_addr()))
            .map_err(|e| e.to_string())
    }
    fn try_write(&self, path: &str) -> Result<String, String> {
        std::fs::write(path, b"escaped\n").map(|()| format!("wrote {path}")).map_err(|e| e.to_string())
    }
    fn try_exec(&self) -> Result<String, String> {
        std::process::Command::new("/bin/true")
            .status()
            .map(|s| format!("ran /bin/true: {s}"))
            .map_err(|e| e.to_string())
    }
    fn close_socket_then_hang(&self) {
        self.close_socket();
        self.hang();
    }
    fn spawn_detached_sleeper(&self, seconds: u32) -> u32 {
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            let mut cmd = std::process::Command::new("sleep");
            cmd.arg(seconds.to_string()).process_group(0);
            cmd.spawn().map(|c| c.id()).unwrap_or(0)
        }
        #[cfg(not(unix))]
        {
            let _ = seconds;
            0
        }
    }
    fn open_fds(&self) -> Vec<u8> {
        let mut fds: Vec<u8> = std::fs::read_dir("/proc/self/fd")
            .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
            .unwrap_or_default();
        fds.sort();
        fds
    }
    fn print_bytes(&self, bytes: &[u8]) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(bytes);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
    fn burn(&self) {
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
    fn open_files(&self, count: u64) -> Result<u64, String> {
        let mut files = Vec::new();
        for _ in 0..count {
            files.push(std::fs::File::open("/dev/null").map_err(|e| format!("after {} files: {e}", files.len()))?);
        }
        Ok(files.len() as u64)
    }
    fn sleep_ms(&self, ms: u64) -> u32 {
        let now = self.sleeping.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_sleeping.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(ms));
        self.sleeping.fetch_sub(1, Ordering::SeqCst);
        self.most_sleeping.load(Ordering::SeqCst)
    }
    fn meet(&self, count: u32) -> bool {
        let (inside, arrived) = &self.met;
        let mut inside = inside.lock().unwrap();
        *inside += 1;
        arrived.notify_all();
        // Counts every call since the instance was made: one meeting per instance.
        // (The wait is a hang guard, under the host's default 30 s call deadline.)
        let (_inside, waited) =
            arrived.wait_timeout_while(inside, Duration::from_secs(25), |inside| *inside < count).unwrap();
        !waited.timed_out()
    }
    fn sleeping(&self) -> u32 {
        self.sleeping.load(Ordering::SeqCst)
    }
}

tomada::export!(Bad as Faulty);

/// Runs when the library is opened: writes the file named by `TOMADA_MARKER`, if
/// set, so a test can see whether initialisers run inside the sandbox.
#[cfg(unix)]
extern "C" fn leave_a_trace() {
    if let Some(path) = std::env::var_os("TOMADA_MARKER") {
        let _ = std::fs::write(path, b"faulty initialiser ran\n");
    }
}

#[cfg(unix)]
#[used]
#[unsafe(link_section = ".init_array")]
static LEAVE_A_TRACE: extern "C" fn() = leave_a_trace;
