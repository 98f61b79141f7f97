//! Isolated calls, measured against their baselines in the same run:
//!
//! - `greet("Mundo")` to the greeter plugin isolated in a child process: round-trip
//!   p50/p99 and throughput, with the CPU time both processes spent per call;
//! - the same call in-process;
//! - a bare two-process ping-pong of the same bytes over a socketpair with blocking
//!   reads (the naive floor a plain RPC pays);
//! - spawn + handshake (start the child, load the plugin, first call).
//!
//! Percentiles need every sample, which criterion does not expose, hence this small
//! harness. Run: `cargo bench -p tomada-host --bench isolation`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pluginapi::Greeter;
use tomada_host::isolate::{Isolation, Mode, Runner, Sandbox};

tomada_host::tomada::global_allocator!();

const CALLS: usize = 20_000;
const PING_BYTES: usize = 64;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>, wall: Duration) {
    samples.sort();
    println!(
        "{name:<34} p50 {:>9.2?}  p99 {:>9.2?}  throughput {:>9.0} calls/s",
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples.len() as f64 / wall.as_secs_f64()
    );
}

/// User + system CPU time of process `pid`, from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    // Fields after the command: state is [0]; utime is [11], stime [12], in clock ticks.
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    // SAFETY: `sysconf` has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

fn timed(mut f: impl FnMut()) -> (Vec<Duration>, Duration) {
    let mut samples = Vec::with_capacity(CALLS);
    let start = Instant::now();
    for _ in 0..CALLS {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    (samples, start.elapsed())
}

/// The echo side of the bare ping-pong, in a child process: blocking reads.
fn echo_server() {
    use std::os::fd::FromRawFd;
    // SAFETY: the parent passed this descriptor (a socketpair end) for us alone.
    let mut s = unsafe { UnixStream::from_raw_fd(3) };
    let mut buf = [0u8; PING_BYTES];
    while s.read_exact(&mut buf).is_ok() {
        if s.write_all(&buf).is_err() {
            break;
        }
    }
}

fn bare_ping_pong() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    let fd = theirs.as_raw_fd();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env("TOMADA_BENCH_ECHO", "1").stdout(Stdio::null());
    // SAFETY: only `dup2`, async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || if libc::dup2(fd, 3) < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) });
    }
    let mut child = cmd.spawn().unwrap();
    drop(theirs);
    let msg = [7u8; PING_BYTES];
    let mut back = [0u8; PING_BYTES];
    for _ in 0..1000 {
        ours.write_all(&msg).unwrap();
        ours.read_exact(&mut back).unwrap();
    }
    let (cpu0, child_cpu0) = (cpu_time(std::process::id()), cpu_time(child.id()));
    let (samples, wall) = timed(|| {
        ours.write_all(&msg).unwrap();
        ours.read_exact(&mut back).unwrap();
    });
    let cpu = cpu_time(std::process::id()) - cpu0 + cpu_time(child.id()) - child_cpu0;
    report("bare ping-pong (blocking, 64 B)", samples, wall);
    println!("{:<34} {:.2?} CPU per round trip (both processes)", "", cpu / CALLS as u32);
    drop(ours);
    child.wait().unwrap();
}

fn main() {
    if std::env::var_os("TOMADA_BENCH_ECHO").is_some() {
        echo_server();
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and friends
    }
    let path = tomada_test_support::Build::new("greeter").release().cdylib();
    let runner = Runner::Path(env!("CARGO_BIN_EXE_tomada-runner").into());
    println!("{CALLS} calls each, greet(\"Mundo\") unless said otherwise; 2 vCPUs, no pinning\n");

    let local = tomada_host::load::<dyn Greeter>(&path).unwrap();
    let (samples, wall) = timed(|| drop(std::hint::black_box(local.greet("Mundo").unwrap())));
    report("in-process greet", samples, wall);

    let isolated =
        tomada_host::load_with::<dyn Greeter>(&path, &Mode::Isolated(Isolation::new().runner(runner.clone()))).unwrap();
    for _ in 0..1000 {
        isolated.greet("Mundo").unwrap();
    }
    let child = isolated.process_id().unwrap();
    let (cpu0, child_cpu0) = (cpu_time(std::process::id()), cpu_time(child));
    let (samples, wall) = timed(|| drop(std::hint::black_box(isolated.greet("Mundo").unwrap())));
    let cpu = cpu_time(std::process::id()) - cpu0 + cpu_time(child) - child_cpu0;
    report("isolated greet (spin, then block)", samples, wall);
    println!(
        "{:<34} {:.2?} CPU per call (both processes; wall per call {:.2?})",
        "",
        cpu / CALLS as u32,
        wall / CALLS as u32
    );

    // The same under `Sandbox::strict()` (Landlock + seccomp on every system call).
    let iso = Isolation::new().runner(runner.clone()).sandbox(Sandbox::strict());
    let strict = tomada_host::load_with::<dyn Greeter>(&path, &Mode::Isolated(iso)).unwrap();
    for _ in 0..1000 {
        strict.greet("Mundo").unwrap();
    }
    let (samples, wall) = timed(|| drop(std::hint::black_box(strict.greet("Mundo").unwrap())));
    report("isolated greet, Sandbox::strict()", samples, wall);
    drop(strict);

    bare_ping_pong();

    let mut starts = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let p = tomada_host::load_with::<dyn Greeter>(&path, &Mode::Isolated(Isolation::new().runner(runner.clone())))
            .unwrap();
        p.greet("Mundo").unwrap();
        starts.push(t.elapsed());
    }
    starts.sort();
    println!(
        "{:<34} p50 {:>9.2?}  max {:>9.2?}  (30 starts, each to its first answer)",
        "spawn + handshake + first call",
        percentile(&starts, 0.5),
        starts[starts.len() - 1]
    );
    let mut starts = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let iso = Isolation::new().runner(runner.clone()).sandbox(Sandbox::strict());
        let p = tomada_host::load_with::<dyn Greeter>(&path, &Mode::Isolated(iso)).unwrap();
        p.greet("Mundo").unwrap();
        starts.push(t.elapsed());
    }
    starts.sort();
    println!(
        "{:<34} p50 {:>9.2?}  max {:>9.2?}  (30 starts, each to its first answer)",
        "the same, Sandbox::strict()",
        percentile(&starts, 0.5),
        starts[starts.len() - 1]
    );
}
