//! Isolated calls in the cases that matter, each next to a floor measured in the
//! same run: a bare two-process ping-pong of the same bytes over a socketpair with
//! blocking reads (what a plain RPC pays).
//!
//! - back to back; after idle gaps of 1 ms and 10 ms (latency of the call alone);
//! - everything on one CPU (this bench re-runs itself pinned to CPU 0 with
//!   `sched_setaffinity`; the plugin's processes and the echo process inherit it);
//! - a 1 MiB argument and a 1 MiB result;
//! - 1, 2, 4 and 8 threads calling one isolated plugin (the floor: as many threads,
//!   each with its own echo process), without lanes (the default) and with 4
//!   (`Isolation::lanes`);
//! - the in-process call, `Sandbox::strict()`, and spawn + handshake.
//!
//! CPU per call counts both sides: this process (`getrusage`, exited threads
//! included) and every process under the child it started — the plugin's worker is a
//! grandchild, inside a PID namespace — from `/proc/<pid>/task/*/schedstat`.
//! Percentiles need every sample, which criterion does not expose, hence this small
//! harness. Run: `cargo bench -p tomada-host --bench isolation`
//! (`TOMADA_BENCH_CASES=threads,...` for some cases only, `TOMADA_BENCH_THREADS=4`
//! for some thread counts of `threads` only; `TOMADA_BENCH_RUNNER=path`
//! for another build's runner binary, beside a copy of that build's bench binary;
//! `TOMADA_BENCH_PROFILE=reverse` (or `concat`, `birthday`, `len`, `floor`): that one
//! 1 MiB row alone, 5,000 calls, nothing printed, for `perf record`).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pluginapi::Greeter;
use tomada_host::Plugin;
use tomada_host::isolate::{Isolation, Mode, Runner, Sandbox};

tomada_host::tomada::global_allocator!();

const CALLS: usize = 20_000;
const PING_BYTES: usize = 64;
const MIB: usize = 1 << 20;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// One measured case.
struct Row {
    p50: Duration,
    p99: Duration,
    per_second: f64,
    cpu: Duration,
}

fn print(name: &str, row: &Row, floor: Option<&Row>) {
    let ratio = floor
        .map(|f| {
            format!(
                "  ratio p50 {:.2}x  cpu {:.2}x",
                row.p50.as_secs_f64() / f.p50.as_secs_f64(),
                row.cpu.as_secs_f64() / f.cpu.as_secs_f64()
            )
        })
        .unwrap_or_default();
    println!(
        "{name:<40} p50 {:>9.2?}  p99 {:>9.2?}  {:>8.0} calls/s  cpu/call {:>9.2?}{ratio}",
        row.p50, row.p99, row.per_second, row.cpu
    );
}

/// This process's CPU time, exited threads included.
fn own_cpu() -> Duration {
    // SAFETY: `getrusage` writes into a zeroed local.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU time of this process's children that have ended and been reaped.
fn children_cpu() -> Duration {
    // SAFETY: `getrusage` writes into a zeroed local.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// CPU time of process `pid` and all its descendants (live threads).
fn tree_cpu(pid: u32) -> Duration {
    let mut total = Duration::ZERO;
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return total };
    for task in tasks.flatten() {
        let dir = task.path();
        if let Some(ns) = std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
        {
            total += Duration::from_nanos(ns);
        }
        for child in std::fs::read_to_string(dir.join("children")).unwrap_or_default().split_whitespace() {
            if let Ok(child) = child.parse() {
                total += tree_cpu(child);
            }
        }
    }
    total
}

/// Runs `f` `calls` times (after `gap`, untimed, before each), from one thread.
fn measure(calls: usize, gap: Duration, children: &[u32], mut f: impl FnMut()) -> Row {
    let mut samples = Vec::with_capacity(calls);
    let cpu0 = own_cpu() + children.iter().map(|&c| tree_cpu(c)).sum::<Duration>();
    let start = Instant::now();
    for _ in 0..calls {
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    let wall = start.elapsed();
    let cpu = own_cpu() + children.iter().map(|&c| tree_cpu(c)).sum::<Duration>() - cpu0;
    samples.sort();
    Row {
        p50: percentile(&samples, 0.5),
        p99: percentile(&samples, 0.99),
        per_second: calls as f64 / wall.as_secs_f64(),
        cpu: cpu / calls as u32,
    }
}

/// Runs `f` from `threads` threads, `calls` times each; throughput and CPU per call.
fn measure_threads<T: Sync>(threads: usize, calls: usize, children: &[u32], each: &[T], f: impl Fn(&T) + Sync) -> Row {
    let cpu0 = own_cpu() + children.iter().map(|&c| tree_cpu(c)).sum::<Duration>();
    let start = Instant::now();
    let mut samples: Vec<Duration> = std::thread::scope(|s| {
        let running: Vec<_> = (0..threads)
            .map(|t| {
                let (f, target) = (&f, &each[t % each.len()]);
                s.spawn(move || {
                    (0..calls)
                        .map(|_| {
                            let t = Instant::now();
                            f(target);
                            t.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        running.into_iter().flat_map(|r| r.join().unwrap()).collect()
    });
    let wall = start.elapsed();
    let cpu = own_cpu() + children.iter().map(|&c| tree_cpu(c)).sum::<Duration>() - cpu0;
    samples.sort();
    let total = threads * calls;
    Row {
        p50: percentile(&samples, 0.5),
        p99: percentile(&samples, 0.99),
        per_second: total as f64 / wall.as_secs_f64(),
        cpu: cpu / total as u32,
    }
}

/// The echo side of the bare ping-pong, in a child process: blocking reads of a
/// length-prefixed message, echoed back.
fn echo_server() {
    use std::os::fd::FromRawFd;
    // SAFETY: the parent passed this descriptor (a socketpair end) for us alone.
    let mut s = unsafe { UnixStream::from_raw_fd(3) };
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            break;
        }
        buf.resize(u32::from_le_bytes(len) as usize, 0);
        if s.read_exact(&mut buf).is_err() || s.write_all(&len).is_err() || s.write_all(&buf).is_err() {
            break;
        }
    }
}

/// A bare ping-pong partner: an echo process at the end of a socketpair.
struct Bare {
    socket: UnixStream,
    child: Child,
    back: Vec<u8>,
}

impl Bare {
    fn start() -> Bare {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let (socket, theirs) = UnixStream::pair().unwrap();
        let fd = theirs.as_raw_fd();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.env("TOMADA_BENCH_ECHO", "1").stdout(Stdio::null());
        // SAFETY: only `dup2`, async-signal-safe, between fork and exec.
        unsafe {
            cmd.pre_exec(move || if libc::dup2(fd, 3) < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) });
        }
        let child = cmd.spawn().unwrap();
        drop(theirs);
        Bare { socket, child, back: Vec::new() }
    }

    fn round_trip(&mut self, msg: &[u8]) {
        let mut socket = &self.socket;
        socket.write_all(&(msg.len() as u32).to_le_bytes()).unwrap();
        socket.write_all(msg).unwrap();
        let mut len = [0u8; 4];
        socket.read_exact(&mut len).unwrap();
        self.back.resize(u32::from_le_bytes(len) as usize, 0);
        socket.read_exact(&mut self.back).unwrap();
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        let _ = self.child.wait();
    }
}

/// A `Person` whose `photo` is `photo`.
fn person_with(photo: Vec<u8>) -> allround_api::Person {
    allround_api::Person { name: "Ana".into(), age: 30, nickname: None, photo, position: allround_api::Point(1.0, 2.0) }
}

struct Setup {
    path: std::path::PathBuf,
    runner: Runner,
}

impl Setup {
    fn isolated(&self) -> Plugin<dyn Greeter> {
        self.isolated_with(Isolation::new().runner(self.runner.clone()))
    }

    fn isolated_with(&self, iso: Isolation) -> Plugin<dyn Greeter> {
        let p = tomada_host::load_with::<dyn Greeter>(&self.path, &Mode::Isolated(iso)).unwrap();
        for _ in 0..1000 {
            p.greet("Mundo").unwrap();
        }
        p
    }
}

/// Back to back and after idle gaps, isolated and bare; `label` names the CPU setup.
fn latency_cases(setup: &Setup, label: &str, gaps: &[(Duration, usize)]) {
    let plugin = setup.isolated();
    let child = plugin.process_id().unwrap();
    let mut bare = Bare::start();
    let msg = [7u8; PING_BYTES];
    for _ in 0..1000 {
        bare.round_trip(&msg);
    }
    let bare_pid = bare.pid();
    for &(gap, calls) in gaps {
        let what = if gap.is_zero() { "back to back".to_owned() } else { format!("after a {gap:?} gap") };
        let floor = measure(calls, gap, &[bare_pid], || bare.round_trip(&msg));
        let row = measure(calls, gap, &[child], || drop(std::hint::black_box(plugin.greet("Mundo").unwrap())));
        print(&format!("bare ping-pong, {what}{label}"), &floor, None);
        print(&format!("isolated greet, {what}{label}"), &row, Some(&floor));
    }
}

/// Whether case `name` runs: all do, unless `TOMADA_BENCH_CASES` lists some
/// (`latency`, `mib`, `mib_bytes`, `threads`, `strict`, `spawn`, `callbacks`).
fn wants(name: &str) -> bool {
    std::env::var("TOMADA_BENCH_CASES").map_or(true, |cases| cases.split(',').any(|c| c.trim() == name))
}

fn main() {
    if std::env::var_os("TOMADA_BENCH_ECHO").is_some() {
        echo_server();
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and friends
    }
    let setup = Setup {
        path: tomada_test_support::Build::new("greeter").release().cdylib(),
        // (`TOMADA_BENCH_RUNNER` names another runner binary: a copy of an earlier
        // build's, to compare two builds in one sitting.)
        runner: Runner::Path(
            std::env::var_os("TOMADA_BENCH_RUNNER")
                .map_or_else(|| env!("CARGO_BIN_EXE_tomada-runner").into(), Into::into),
        ),
    };
    if std::env::var_os("TOMADA_BENCH_ONE_CPU").is_some() {
        // SAFETY: `sched_setaffinity` on this process with a set made here; the
        // processes it starts inherit it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            assert_eq!(libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set), 0);
        }
        latency_cases(&setup, ", one CPU", &[(Duration::ZERO, CALLS), (Duration::from_millis(1), 2000)]);
        return;
    }
    println!("greet(\"Mundo\") unless said otherwise; ratios against the bare floor of the line above\n");

    if wants("latency") {
        let local = tomada_host::load::<dyn Greeter>(&setup.path).unwrap();
        let row = measure(CALLS, Duration::ZERO, &[], || drop(std::hint::black_box(local.greet("Mundo").unwrap())));
        print("in-process greet", &row, None);
        drop(local);

        latency_cases(
            &setup,
            "",
            &[(Duration::ZERO, CALLS), (Duration::from_millis(1), 2000), (Duration::from_millis(10), 300)],
        );

        // Everything on one CPU: this bench again, pinned, in a process of its own.
        let status = Command::new(std::env::current_exe().unwrap()).env("TOMADA_BENCH_ONE_CPU", "1").status().unwrap();
        assert!(status.success());
    }

    // 1 MiB argument, 1 MiB (and a few bytes) result.
    if wants("mib") {
        let plugin = setup.isolated();
        let child = plugin.process_id().unwrap();
        let name = "x".repeat(MIB);
        let mut bare = Bare::start();
        let msg = vec![7u8; MIB];
        bare.round_trip(&msg);
        plugin.greet(&name).unwrap();
        let floor = measure(1000, Duration::ZERO, &[bare.pid()], || bare.round_trip(&msg));
        let row = measure(1000, Duration::ZERO, &[child], || drop(std::hint::black_box(plugin.greet(&name).unwrap())));
        print("bare ping-pong, 1 MiB each way", &floor, None);
        print("isolated greet, 1 MiB argument and result", &row, Some(&floor));
    }

    // One 1 MiB row alone, for a profile.
    if let Ok(row) = std::env::var("TOMADA_BENCH_PROFILE") {
        let path = tomada_test_support::Build::new("allround").release().cdylib();
        let iso = Isolation::new().runner(setup.runner.clone());
        let plugin = tomada_host::load_with::<dyn allround_api::Allround>(&path, &Mode::Isolated(iso)).unwrap();
        let bytes = vec![7u8; MIB];
        let half = "y".repeat(MIB / 2);
        let person = person_with(bytes.clone());
        let mut bare = Bare::start();
        for _ in 0..5000 {
            match row.as_str() {
                "reverse" => drop(std::hint::black_box(plugin.reverse(&bytes).unwrap())),
                "concat" => drop(std::hint::black_box(plugin.concat(half.clone(), &half).unwrap())),
                "birthday" => drop(std::hint::black_box(plugin.birthday(person.clone()).unwrap())),
                "len" => drop(std::hint::black_box(plugin.len(bytes.clone()).unwrap())),
                _ => bare.round_trip(&bytes),
            }
        }
        return;
    }

    // 1 MiB of bytes each way: `reverse(&[u8]) -> Vec<u8>` of the allround fixture.
    if wants("mib_bytes") {
        let path = tomada_test_support::Build::new("allround").release().cdylib();
        let iso = Isolation::new().runner(setup.runner.clone());
        let plugin = tomada_host::load_with::<dyn allround_api::Allround>(&path, &Mode::Isolated(iso)).unwrap();
        let child = plugin.process_id().unwrap();
        let bytes = vec![7u8; MIB];
        assert_eq!(plugin.reverse(&bytes).unwrap().len(), MIB);
        let mut bare = Bare::start();
        bare.round_trip(&bytes);
        let floor = measure(1000, Duration::ZERO, &[bare.pid()], || bare.round_trip(&bytes));
        let row =
            measure(1000, Duration::ZERO, &[child], || drop(std::hint::black_box(plugin.reverse(&bytes).unwrap())));
        print("bare ping-pong, 1 MiB each way", &floor, None);
        print("isolated reverse(&[u8]) -> Vec<u8>, 1 MiB", &row, Some(&floor));
        // The plugin's own work (and the result's allocation), which the floor does
        // not do: the same call in-process.
        let local = tomada_host::load::<dyn allround_api::Allround>(&path).unwrap();
        let own = measure(1000, Duration::ZERO, &[], || drop(std::hint::black_box(local.reverse(&bytes).unwrap())));
        print("in-process reverse, 1 MiB (the work)", &own, Some(&floor));
        drop(local);
        // The other byte types, against the same floor: `String` and `&str` in (half a
        // MiB each), a `String` of 1 MiB out; a struct holding 1 MiB of bytes each way
        // (the plugin appends a byte, so it reallocates: its own work); and a
        // `Vec<u8>` given away, a number back (half the bytes of the floor).
        let half = "y".repeat(MIB / 2);
        assert_eq!(plugin.concat(half.clone(), &half).unwrap().len(), MIB);
        let row = measure(1000, Duration::ZERO, &[child], || {
            drop(std::hint::black_box(plugin.concat(half.clone(), &half).unwrap()))
        });
        print("isolated concat(String, &str) -> String", &row, Some(&floor));
        let person = person_with(bytes.clone());
        assert_eq!(plugin.birthday(person.clone()).unwrap().photo.len(), MIB + 1);
        let row = measure(1000, Duration::ZERO, &[child], || {
            drop(std::hint::black_box(plugin.birthday(person.clone()).unwrap()))
        });
        print("isolated birthday(Person) -> Person", &row, Some(&floor));
        let row = measure(1000, Duration::ZERO, &[child], || {
            std::hint::black_box(plugin.len(bytes.clone()).unwrap());
        });
        print("isolated len(Vec<u8>) -> u64, 1 MiB in", &row, Some(&floor));
    }

    // Threads sharing one isolated plugin; the floor: as many bare pairs.
    if wants("threads") {
        let plugin = Arc::new(setup.isolated());
        let child = plugin.process_id().unwrap();
        // The same plugin with lanes (`Isolation::lanes`, off by default): a pair of
        // rings and a child thread for each of up to 4 threads calling at once.
        let laned = Arc::new(setup.isolated_with(Isolation::new().runner(setup.runner.clone()).lanes(4)));
        let laned_child = laned.process_id().unwrap();
        let mut one = None;
        let mut one_laned = None;
        // (`TOMADA_BENCH_THREADS=4,8` for some thread counts only: a profile of one.)
        let counts: Vec<usize> = std::env::var("TOMADA_BENCH_THREADS")
            .map_or_else(|_| vec![1, 2, 4, 8], |l| l.split(',').filter_map(|n| n.trim().parse().ok()).collect());
        for threads in counts {
            let bares: Vec<std::sync::Mutex<Bare>> =
                (0..threads).map(|_| std::sync::Mutex::new(Bare::start())).collect();
            let pids: Vec<u32> = bares.iter().map(|b| b.lock().unwrap().pid()).collect();
            let msg = [7u8; PING_BYTES];
            let floor = measure_threads(threads, 2000, &pids, &bares, |b| b.lock().unwrap().round_trip(&msg));
            let row = measure_threads(threads, CALLS / threads, &[child], &[&plugin], |p| {
                drop(std::hint::black_box(p.greet("Mundo").unwrap()))
            });
            let with_lanes = measure_threads(threads, CALLS / threads, &[laned_child], &[&laned], |p| {
                drop(std::hint::black_box(p.greet("Mundo").unwrap()))
            });
            print(&format!("bare ping-pong, {threads} threads"), &floor, None);
            print(&format!("isolated greet, {threads} threads"), &row, Some(&floor));
            let one = *one.get_or_insert(row.per_second);
            println!("{:<40} {:.2}x the calls/s of one thread", "", row.per_second / one);
            print(&format!("isolated greet, {threads} threads, 4 lanes"), &with_lanes, Some(&floor));
            let one_laned = *one_laned.get_or_insert(with_lanes.per_second);
            println!("{:<40} {:.2}x the calls/s of one thread", "", with_lanes.per_second / one_laned);
        }
    }

    // Objects and callbacks, isolated: a call during which the plugin calls back into
    // the host once (host -> plugin -> host -> back), and a call to an object the
    // plugin made, each against the plain isolated call of the same shape.
    if wants("callbacks") {
        use bench_callback_api::{Bench, Config};
        struct Host;
        impl Config for Host {
            fn config(&self, key: &str) -> Option<String> {
                Some(key.to_owned())
            }
        }
        let path = tomada_test_support::Build::new("bench-callback").release().cdylib();
        let iso = Isolation::new().runner(setup.runner.clone());
        let plugin = tomada_host::load_with::<dyn Bench>(&path, &Mode::Isolated(iso)).unwrap();
        let child = plugin.process_id().unwrap();
        let cursor = plugin.open().unwrap();
        for _ in 0..1000 {
            plugin.next().unwrap();
            plugin.lookup("k", &Host).unwrap();
            cursor.next().unwrap();
        }
        let plain = measure(CALLS, Duration::ZERO, &[child], || drop(std::hint::black_box(plugin.next().unwrap())));
        let callback =
            measure(CALLS, Duration::ZERO, &[child], || drop(std::hint::black_box(plugin.lookup("k", &Host).unwrap())));
        let object = measure(CALLS, Duration::ZERO, &[child], || drop(std::hint::black_box(cursor.next().unwrap())));
        print("isolated plain call (Bench::next)", &plain, None);
        print("isolated call with one callback", &callback, Some(&plain));
        print("isolated call of a plugin's object", &object, Some(&plain));
    }

    // The same back-to-back call under `Sandbox::strict()` (no capabilities, Landlock,
    // the seccomp allow-list), against the unsandboxed isolated call measured just
    // before it (the ratio is the sandbox's cost per call).
    if wants("strict") {
        let plain = setup.isolated();
        let plain_child = plain.process_id().unwrap();
        let iso = Isolation::new().runner(setup.runner.clone()).sandbox(Sandbox::strict());
        let strict = tomada_host::load_with::<dyn Greeter>(&setup.path, &Mode::Isolated(iso)).unwrap();
        let child = strict.process_id().unwrap();
        for _ in 0..1000 {
            strict.greet("Mundo").unwrap();
        }
        for round in 0..2 {
            let base = measure(CALLS, Duration::ZERO, &[plain_child], || {
                drop(std::hint::black_box(plain.greet("Mundo").unwrap()))
            });
            let row =
                measure(CALLS, Duration::ZERO, &[child], || drop(std::hint::black_box(strict.greet("Mundo").unwrap())));
            print(&format!("isolated greet, no sandbox (round {})", round + 1), &base, None);
            print("isolated greet, Sandbox::strict()", &row, Some(&base));
        }
    }

    if std::env::var_os("TOMADA_BENCH_STEPS").is_some() {
        // (A process of its own, started by `spawn_cases`: its stderr is the breakdown.)
        let which = std::env::var("TOMADA_BENCH_STEPS").unwrap();
        let (spare, paused) = (which.starts_with("spare"), which.starts_with("paused"));
        step_starts(&setup, which.ends_with("strict"), spare, spare || paused);
        return;
    }
    if wants("spawn") {
        spawn_cases(&setup);
    }
}

/// How many starts each spawn row times.
const STARTS: usize = 30;

/// Spawn + handshake + first call, without and with `Sandbox::strict()`, beside the
/// `exec` of a trivial program (the floor no start goes below), then where a start's
/// time goes, step by step.
fn spawn_cases(setup: &Setup) {
    // Floors: starting a process that does nothing, to its end (`posix_spawn` +
    // `execve` + `waitpid`): a dynamically linked `/bin/true`, a static-PIE
    // `ldconfig`, and the runner itself (`ld.so`, std, refusing to run untold).
    let runner_exe = match &setup.runner {
        Runner::Path(p) => p.clone(),
        _ => unreachable!("the bench names its runner"),
    };
    let floors: Vec<(&str, std::path::PathBuf, &[&str])> = vec![
        ("exec floor: /bin/true", "/bin/true".into(), &[]),
        ("exec floor: static ldconfig --version", "/sbin/ldconfig".into(), &["--version"]),
        ("exec floor: the runner, exiting at once", runner_exe, &[]),
    ];
    let mut floor_row = None;
    for (label, exe, args) in floors {
        if !exe.exists() {
            continue;
        }
        let row = starts(Duration::ZERO, || {
            Command::new(&exe)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
        });
        print_start(label, &row, None);
        floor_row.get_or_insert(row);
    }
    let start = |sandbox: Option<&Sandbox>, spare: bool| {
        let mut iso = Isolation::new().runner(setup.runner.clone()).spare_runner(spare);
        if let Some(s) = sandbox {
            iso = iso.sandbox(s.clone());
        }
        let p = tomada_host::load_with::<dyn Greeter>(&setup.path, &Mode::Isolated(iso)).unwrap();
        p.greet("Mundo").unwrap();
        p
    };
    let strict = Sandbox::strict();
    let mut base: Vec<Row> = Vec::new();
    for (label, sandbox) in [("spawn + handshake + first call", None), ("the same, Sandbox::strict()", Some(&strict))] {
        let row = starts(Duration::ZERO, || start(sandbox, false));
        print_start(label, &row, floor_row.as_ref());
        base.push(row);
    }
    // With a spare runner (`Isolation::spare_runner`): a plugin with the option stays
    // loaded (as in a host that has several, or restarts one), so a spare is kept.
    // Interleaved (one start of each kind per round, in turn, so a change of the
    // machine's load in the sitting falls on all four alike), each start 5 ms after
    // the one before (untimed: the spare's own start runs in the background), against
    // the same starts without the option. CPU per start: this process's and its
    // reaped children's over the start and the plugin's end (a spare's own start is
    // counted when the plugin that took it ends: each start takes one and starts one).
    let _anchor = start(None, true);
    let kinds: [(&str, Option<&Sandbox>, bool); 4] = [
        ("no spare, 5 ms apart", None, false),
        ("no spare, Sandbox::strict(), 5 ms apart", Some(&strict), false),
        ("spare runner, 5 ms apart", None, true),
        ("spare runner, Sandbox::strict(), 5 ms apart", Some(&strict), true),
    ];
    let mut samples = vec![(Vec::new(), Duration::ZERO); kinds.len()];
    for round in 0..=STARTS {
        for i in 0..kinds.len() {
            let k = (i + round) % kinds.len();
            let (_, sandbox, spare) = kinds[k];
            std::thread::sleep(Duration::from_millis(5));
            let cpu = own_cpu() + children_cpu();
            let t = Instant::now();
            let started = start(sandbox, spare);
            let wall = t.elapsed();
            drop(started);
            // (Round 0 is a warm-up.)
            if round > 0 {
                samples[k].0.push(wall);
                samples[k].1 += own_cpu() + children_cpu() - cpu;
            }
        }
    }
    let rows: Vec<Row> = samples
        .into_iter()
        .map(|(mut wall, cpu)| {
            wall.sort();
            Row {
                p50: percentile(&wall, 0.5),
                p99: wall[0],
                per_second: wall[wall.len() - 1].as_secs_f64(),
                cpu: cpu / STARTS as u32,
            }
        })
        .collect();
    for (k, (label, _, spare)) in kinds.iter().enumerate() {
        print_start(label, &rows[k], if *spare { Some(&rows[k - 2]) } else { floor_row.as_ref() });
    }
    // Back to back: the next start finds the spare still starting, and waits for it.
    let row = starts(Duration::ZERO, || start(None, true));
    print_start("spare runner, back to back", &row, Some(&base[0]));
    // The breakdown: this bench again, with every step's timestamp on stderr.
    for which in ["none", "strict", "paused", "paused-strict", "spare", "spare-strict"] {
        let out = Command::new(std::env::current_exe().unwrap())
            .env("TOMADA_BENCH_STEPS", which)
            .env("TOMADA_STEP_TIMES", "1")
            .env(
                "TOMADA_BENCH_RUNNER",
                &match &setup.runner {
                    Runner::Path(p) => p.clone(),
                    _ => unreachable!(),
                },
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        print_steps(which, &String::from_utf8_lossy(&out.stderr));
    }
}

/// `STARTS` runs of `f` (after one untimed), `pause` apart: wall-clock p50, min and
/// max, and CPU per run (this process and its reaped children: a plugin's processes
/// are reaped by their supervisor, the host's child).
fn starts<T>(pause: Duration, mut f: impl FnMut() -> T) -> Row {
    drop(f());
    let mut samples = Vec::new();
    let cpu_before = own_cpu() + children_cpu();
    for _ in 0..STARTS {
        std::thread::sleep(pause);
        let t = Instant::now();
        let started = f();
        samples.push(t.elapsed());
        // (Ended untimed: a plugin's end is no part of its start.)
        drop(started);
    }
    let cpu = (own_cpu() + children_cpu() - cpu_before) / STARTS as u32;
    samples.sort();
    Row { p50: percentile(&samples, 0.5), p99: samples[0], per_second: samples[samples.len() - 1].as_secs_f64(), cpu }
}

/// One start row (`Row`'s `p99` holds the minimum and `per_second` the maximum
/// here), with its ratios to `floor` (the exec floor, or the same start without a
/// spare runner).
fn print_start(label: &str, row: &Row, floor: Option<&Row>) {
    let ratio = floor
        .map(|f| {
            format!(
                "  ÷ base: p50 {:.2}x  min {:.2}x  cpu {:.2}x",
                row.p50.as_secs_f64() / f.p50.as_secs_f64(),
                row.p99.as_secs_f64() / f.p99.as_secs_f64(),
                row.cpu.as_secs_f64() / f.cpu.as_secs_f64()
            )
        })
        .unwrap_or_default();
    println!(
        "{label:<40} p50 {:>9.2?}  min {:>9.2?}  max {:>9.2?}  cpu/start {:>9.2?}{ratio}",
        row.p50,
        row.p99,
        Duration::from_secs_f64(row.per_second),
        row.cpu
    );
}

/// The CLOCK_MONOTONIC time, as the host's and the runner's step lines give it.
fn monotonic_ns() -> u128 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `clock_gettime` writes into a local.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u128 * 1_000_000_000 + now.tv_nsec as u128
}

/// The starts of the breakdown (in a process of its own, `TOMADA_STEP_TIMES` set): the
/// runner's step lines are passed to stderr as they come, beside the host's and this
/// bench's own. With `spare`, a spare runner is kept (one plugin with the option stays
/// loaded; its own lines, before the start that takes it, fall in the start before and
/// are not counted); with `paused`, the starts are 10 ms apart (as they must be for
/// the spare to be ready; a start after a pause is slower on a busy machine).
fn step_starts(setup: &Setup, strict: bool, spare: bool, paused: bool) {
    // (One `write` per line: the host's own lines go to the same stderr at once.)
    let line_out = |line: String| drop(std::io::stderr().write_all(line.as_bytes()));
    let options = || {
        let mut iso = Isolation::new()
            .runner(setup.runner.clone())
            .spare_runner(spare)
            .on_output(move |_, _, line| line_out(format!("{line}\n")));
        if strict {
            iso = iso.sandbox(Sandbox::strict());
        }
        iso
    };
    let _anchor =
        spare.then(|| tomada_host::load_with::<dyn Greeter>(&setup.path, &Mode::Isolated(options())).unwrap());
    for _ in 0..=STARTS {
        if paused {
            std::thread::sleep(Duration::from_millis(10));
        }
        let iso = options();
        line_out(format!("tomada-step {} bench: load_with called\n", monotonic_ns()));
        let p = tomada_host::load_with::<dyn Greeter>(&setup.path, &Mode::Isolated(iso)).unwrap();
        p.greet("Mundo").unwrap();
        line_out(format!("tomada-step {} bench: first answer\n", monotonic_ns()));
        drop(p);
    }
}

/// Prints the time from each step to the next (min and median over the starts), in
/// the order the steps come, from the step lines in `log`.
fn print_steps(which: &str, log: &str) {
    let mut marks: Vec<(u128, &str)> = log
        .lines()
        .filter_map(|l| l.strip_prefix("tomada-step "))
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(ns, step)| Some((ns.parse().ok()?, step)))
        .collect();
    marks.sort();
    // Starts, split where the bench calls `load_with` (the first one is a warm-up).
    let mut runs: Vec<Vec<(u128, &str)>> = Vec::new();
    for mark in marks {
        if mark.1 == "bench: load_with called" {
            runs.push(Vec::new());
        }
        if let Some(run) = runs.last_mut() {
            run.push(mark);
        }
    }
    let runs = &runs[1.min(runs.len())..];
    let mut order: Vec<String> = Vec::new();
    let mut gaps: std::collections::HashMap<String, Vec<u128>> = Default::default();
    for run in runs {
        let Some(end) = run.iter().position(|m| m.1 == "bench: first answer") else { continue };
        let mut seen: std::collections::HashMap<&str, usize> = Default::default();
        for pair in run[..=end].windows(2) {
            // (A step met twice in a start, e.g. each seccomp filter, is numbered.)
            let n = seen.entry(pair[1].1).or_default();
            *n += 1;
            let name = if *n > 1 { format!("{} ({})", pair[1].1, n) } else { pair[1].1.to_owned() };
            if !gaps.contains_key(&name) {
                order.push(name.clone());
            }
            gaps.entry(name).or_default().push(pair[1].0 - pair[0].0);
        }
    }
    println!("\nwhere a start goes ({which}; µs from the step before, over {} starts):", runs.len());
    println!("{:<52} {:>8} {:>8}", "step (reached)", "min", "p50");
    let (mut min_sum, mut p50_sum) = (0.0, 0.0);
    for name in order {
        let mut v = gaps.remove(&name).unwrap();
        v.sort();
        let (min, p50) = (v[0] as f64 / 1e3, v[v.len() / 2] as f64 / 1e3);
        min_sum += min;
        p50_sum += p50;
        println!("{name:<52} {min:>8.1} {p50:>8.1}");
    }
    println!("{:<52} {min_sum:>8.1} {p50_sum:>8.1}", "sum");
}
