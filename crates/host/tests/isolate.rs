//! Isolation: the same `.so` in both modes behind the same handle, and every fault
//! of a real fixture plugin (`tests/plugins/faulty`) leaves the host running with a
//! clear error and no leftover process.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fault_api::Faulty;
use pluginapi::Greeter;
use tomada_host::isolate::{Isolation, Mode, Runner, Stream};
use tomada_host::{CallError, LoadError, Plugin};
use tomada_test_support::{HANG_GUARD, cdylib, lane_threads, wait_until, within};

/// Isolation with the `tomada-runner` binary (the test harness cannot serve as one).
pub fn isolation() -> Isolation {
    Isolation::new().runner(Runner::Path(env!("CARGO_BIN_EXE_tomada-runner").into()))
}

pub fn faulty(isolation: Isolation) -> Plugin<dyn Faulty> {
    tomada_host::load_with::<dyn Faulty>(cdylib("faulty"), &Mode::Isolated(isolation)).unwrap()
}

/// Whether process `pid` is gone (or a zombie about to be reaped by init).
pub fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Waits until process `pid` is gone (a hang guard only: how soon is not asserted).
pub fn wait_dead(pid: u32) {
    wait_until(&format!("the end of process {pid}"), || is_dead(pid));
}

fn greet(plugin: &Plugin<dyn Greeter>) -> String {
    plugin.greet("Mundo").unwrap()
}

#[test]
fn the_same_plugin_in_both_modes_behind_the_same_handle() {
    let path = cdylib("greeter");
    let local = tomada_host::load_with::<dyn Greeter>(&path, &Mode::InProcess).unwrap();
    let isolated = tomada_host::load_with::<dyn Greeter>(&path, &Mode::Isolated(isolation())).unwrap();
    assert_eq!(greet(&local), "Olá, Mundo 👋");
    assert_eq!(greet(&isolated), "Olá, Mundo 👋");
    assert_eq!(isolated.info(), local.info());
    assert_eq!(local.process_id(), None);
    let pid = isolated.process_id().expect("an isolated plugin has a process");
    assert_ne!(pid, std::process::id());
    drop(isolated);
    wait_dead(pid);
}

#[test]
fn every_check_happens_before_a_process_starts() {
    let err = tomada_host::load_with::<dyn Greeter>(cdylib("wrong-abi"), &Mode::Isolated(isolation())).unwrap_err();
    assert!(matches!(err, LoadError::AbiMismatch { .. }), "{err:?}");
    let err =
        tomada_host::load_with::<dyn Greeter>(cdylib("changed-layout"), &Mode::Isolated(isolation())).unwrap_err();
    assert!(matches!(err, LoadError::LayoutMismatch { .. }), "{err:?}");
}

#[test]
fn a_runner_that_cannot_start_is_a_load_error() {
    let iso = Isolation::new().runner(Runner::Path("/nonexistent/runner".into()));
    let err = tomada_host::load_with::<dyn Greeter>(cdylib("greeter"), &Mode::Isolated(iso)).unwrap_err();
    assert!(matches!(err, LoadError::Isolation { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot start runner `/nonexistent/runner`"), "{err}");
}

/// A runner whose `main` does not serve first (here `/bin/true`, as a host's own
/// program that forgot `serve_if_runner()` and ran its `main` again, then exited):
/// the error says what to do, not only that the process ended.
#[test]
fn a_runner_that_does_not_serve_names_serve_if_runner() {
    let iso = Isolation::new().runner(Runner::Path("/bin/true".into()));
    let err = tomada_host::load_with::<dyn Greeter>(cdylib("greeter"), &Mode::Isolated(iso)).unwrap_err();
    assert!(matches!(err, LoadError::Isolation { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("ended before it greeted the host"), "{text}");
    assert!(text.contains("serve_if_runner()"), "the message names the fix: {text}");
}

/// Issue 9: the child's load failure is the same structured `LoadError` variant as
/// in-process, not `LoadError::Isolation` with its text.
#[test]
fn a_constructor_panic_in_the_child_is_a_load_error() {
    let path = cdylib("panics-in-new");
    let err = tomada_host::load_with::<dyn Greeter>(&path, &Mode::Isolated(isolation())).unwrap_err();
    assert!(
        matches!(&err, LoadError::InitPanicked { path: p, message } if p == &path && message.starts_with("configuração ausente (at ")),
        "{err:?}"
    );
    assert!(err.to_string().contains("panicked while making its instance: configuração ausente"), "{err}");
}

/// Issue 9: a library the child's dynamic loader refuses (a dependency it cannot
/// find: the child's environment is cleared, so cargo's `LD_LIBRARY_PATH` is gone) is
/// `LoadError::Open` with the loader's message, as in-process.
#[test]
fn a_loader_refusal_in_the_child_is_the_same_load_error() {
    let path = cdylib("missing-dependency");
    let err = tomada_host::load_with::<dyn Greeter>(&path, &Mode::Isolated(isolation())).unwrap_err();
    let LoadError::Open { path: p, source } = &err else { panic!("{err:?}") };
    assert_eq!(p, &path);
    let message = std::error::Error::source(source).map(|s| s.to_string()).unwrap_or_default();
    assert!(message.contains("libtomada_gone.so: cannot open shared object file"), "{message}");
}

#[test]
fn a_panic_is_an_error_and_the_process_lives_on() {
    let p = faulty(isolation());
    let pid = p.process_id().unwrap();
    let err = p.panic("de propósito").unwrap_err();
    assert!(matches!(&err, CallError::Panicked { message } if message.starts_with("de propósito (at ")), "{err:?}");
    assert_eq!(p.process_id().unwrap(), pid, "a caught panic does not cost the process");
}

/// Runs `fault` on a fresh plugin; checks the error, that the old process is gone
/// and that the next call runs in a new process.
fn survives(fault: impl FnOnce(&Plugin<dyn Faulty>) -> Result<(), CallError>, isolation: Isolation) -> CallError {
    let p = faulty(isolation);
    let before = p.process_id().unwrap();
    let err = fault(&p).unwrap_err();
    wait_dead(before);
    assert_eq!(p.echo("still here").unwrap(), "still here");
    let after = p.process_id().unwrap();
    assert_ne!(after, before, "the next call restarts the process");
    err
}

#[test]
fn abort() {
    let err = survives(|p| p.abort(), isolation());
    assert!(
        matches!(&err, CallError::Crashed { signal: Some(6), exit_code: None, detail } if detail.contains("SIGABRT")),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("the plugin's process crashed: the process was killed by signal 6"), "{err}");
}

#[test]
fn segfault() {
    let err = survives(|p| p.segfault(), isolation());
    assert!(
        matches!(&err, CallError::Crashed { signal: Some(11), detail, .. } if detail.contains("SIGSEGV")),
        "{err:?}"
    );
}

#[test]
fn exit() {
    let err = survives(|p| p.exit(3), isolation());
    assert!(
        matches!(&err, CallError::Crashed { signal: None, exit_code: Some(3), detail } if detail.contains("exited with status 3")),
        "{err:?}"
    );
}

#[test]
fn endless_loop_hits_the_deadline() {
    // The deadline also holds for the call `survives` makes next, in a new process:
    // long enough for a busy machine to answer that one.
    let err = survives(|p| p.hang(), isolation().deadline(Duration::from_secs(3)));
    assert!(matches!(&err, CallError::TimedOut { deadline } if *deadline == Duration::from_secs(3)), "{err:?}");
}

#[test]
fn a_scope_deadline_shorter_than_the_plugins_own_ends_an_isolated_call() {
    use tomada_host::isolate::with_deadline;
    // The plugin's own deadline is past the hang guard: only the scope's can end it.
    let plugin = Arc::new(faulty(isolation().deadline(4 * HANG_GUARD)));
    let first = plugin.process_id().unwrap();
    let short = Duration::from_millis(300);
    let calling = Arc::clone(&plugin);
    let err = within("a call with a scope's deadline", move || with_deadline(short, || calling.hang()));
    assert_eq!(err, Err(CallError::TimedOut { deadline: short }));
    // Its process was killed, as past the plugin's own deadline; the next call starts
    // another, outside the scope with the plugin's deadline again.
    wait_dead(first);
    assert_eq!(plugin.echo("again").unwrap(), "again");
    let second = plugin.process_id().unwrap();
    assert_ne!(second, first);
    // A scope whose time is spent: the call is not sent, the process stays.
    assert_eq!(
        with_deadline(Duration::ZERO, || plugin.echo("never")),
        Err(CallError::TimedOut { deadline: Duration::ZERO })
    );
    assert_eq!(plugin.echo("still").unwrap(), "still");
    assert_eq!(plugin.process_id().unwrap(), second);
}

#[test]
fn unbounded_allocation_hits_the_memory_limit() {
    let err = survives(|p| p.allocate().map(drop), isolation().memory_limit(512 << 20));
    assert!(matches!(&err, CallError::Crashed { detail, .. } if detail.contains("SIGABRT")), "{err:?}");
}

#[test]
fn runaway_cpu_hits_the_cpu_limit() {
    // A second of CPU can take a minute of wall time beside other work: the deadline
    // is only a guard here, the limit must be what ends it.
    let err = survives(|p| p.burn(), isolation().cpu_seconds(1).deadline(Duration::from_secs(300)));
    assert!(
        matches!(&err, CallError::Crashed { detail, .. } if detail.contains("SIGXCPU") || detail.contains("SIGKILL")),
        "{err:?}"
    );
}

#[test]
fn the_open_files_limit_holds() {
    let p = faulty(isolation().open_files(32));
    let r = p.open_files(100).unwrap();
    assert!(r.as_ref().is_err_and(|e| e.contains("Too many open files")), "{r:?}");
    let unlimited = faulty(isolation());
    assert_eq!(unlimited.open_files(100).unwrap(), Ok(100));
}

#[test]
fn closing_its_own_socket() {
    // Frames go through shared memory: the answer of the call that closed the socket
    // may still come. The channel ends with the socket all the same: the process ends
    // (or is ended) as soon as its side or the host's waits, and the next call after
    // that runs in a new process.
    let p = faulty(isolation());
    let before = p.process_id().unwrap();
    if let Err(err) = p.close_socket() {
        assert!(matches!(err, CallError::Crashed { .. }), "{err:?}");
    }
    wait_dead(before);
    if let Err(err) = p.echo("noticed") {
        assert!(matches!(err, CallError::Crashed { .. }), "{err:?}");
    }
    assert_eq!(p.echo("still here").unwrap(), "still here");
    assert_ne!(p.process_id().unwrap(), before, "a new process");
}

/// The host ends a child that closed its channel at once, not at the call's
/// deadline: a host that waited for it would end the call with `TimedOut` (after the
/// 10 minutes it was given), not `Crashed`. No clock is read.
#[test]
fn a_plugin_that_closes_its_socket_and_lives_on_is_killed() {
    let err = survives(|p| p.close_socket_then_hang(), isolation().deadline(Duration::from_secs(600)));
    assert!(matches!(err, CallError::Crashed { .. }), "the host waited for a child that was still alive: {err:?}");
}

/// Waits until thread `tid` of this process has exited: by then the kernel has sent
/// the parent-death signal of every process that thread forked.
#[cfg(target_os = "linux")]
fn wait_thread_gone(tid: libc::pid_t) {
    let task = format!("/proc/self/task/{tid}");
    wait_until(&format!("the end of thread {tid}"), || !Path::new(&task).exists());
}

#[cfg(target_os = "linux")]
#[test]
fn a_plugin_restarted_from_a_short_lived_thread_survives_that_thread() {
    // Linux's parent-death signal follows the thread that forked: processes are
    // started from tomada's own long-lived thread, not the caller's. Had the caller's
    // thread forked, its end would have sent the child SIGKILL: once the thread is
    // gone (waited for, not slept on), the child would be dying, and the next call
    // would fail or run in another process.
    let (p, tid) = std::thread::spawn(|| {
        // SAFETY: `gettid` has no preconditions.
        (faulty(isolation()), unsafe { libc::gettid() })
    })
    .join()
    .unwrap();
    wait_thread_gone(tid);
    let first = p.process_id().unwrap();
    assert_eq!(p.echo("alive").unwrap(), "alive");
    assert_eq!(p.process_id(), Some(first), "the process outlived the thread that loaded it");
    std::thread::scope(|s| {
        s.spawn(|| p.abort().unwrap_err()); // restarted on the next call...
    });
    let tid = std::thread::scope(|s| {
        // ...from this thread, which ends.
        s.spawn(|| {
            assert_eq!(p.echo("restarted").unwrap(), "restarted");
            // SAFETY: `gettid` has no preconditions.
            unsafe { libc::gettid() }
        })
        .join()
        .unwrap()
    });
    let second = p.process_id().unwrap();
    assert_ne!(second, first);
    wait_thread_gone(tid);
    assert_eq!(p.echo("still alive").unwrap(), "still alive");
    assert_eq!(p.process_id(), Some(second), "the process outlived the thread that restarted it");
}

#[test]
fn the_plugin_process_inherits_only_its_channel_and_stdio() {
    let p = faulty(isolation().lanes(2));
    let fds = p.open_fds().unwrap();
    // 0-2, the channel (3), the plugin file the host inspected (4: the library is
    // loaded as /proc/self/fd/4), the nudge eventfd for concurrent calls (5), the
    // channel's shared memory (6) and its four bells (7-10), each lane's shared memory
    // and bell (11-12, 13-14), and the descriptor `read_dir` itself holds.
    assert_eq!(&fds[..15], &(0..=14).collect::<Vec<u8>>(), "{fds:?}");
    assert_eq!(fds.len(), 16, "{fds:?}");
    let without = faulty(isolation().lanes(0)).open_fds().unwrap();
    assert_eq!(without, (0..=11).collect::<Vec<u8>>(), "no lanes: {without:?}");
}

/// A grandchild that left the plugin's process group (and holds its output pipes)
/// sleeps far longer than the hang guard `drop` runs under: a `drop` that waited for
/// it would trip the guard. No clock is read.
#[test]
fn a_detached_grandchild_does_not_hold_the_host() {
    let p = faulty(isolation());
    let sleeper = p.spawn_detached_sleeper(100_000).unwrap();
    assert_ne!(sleeper, 0);
    let pid = p.process_id().unwrap();
    within("dropping a plugin whose grandchild sleeps on", move || drop(p));
    wait_dead(pid);
    // (`sleeper` is a pid in the plugin's PID namespace, gone with it: see
    // `sandbox::nothing_the_plugin_starts_outlives_its_handle`.)
}

#[test]
fn output_that_is_not_utf8_is_forwarded_and_printing_goes_on() {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&lines);
    let p = faulty(isolation().on_output(move |_, stream, line| {
        if stream == Stream::Stdout {
            sink.lock().unwrap().push(line.to_owned());
        }
    }));
    p.print_bytes(b"caf\xe9 \xff").unwrap();
    p.print("depois").unwrap();
    p.print_bytes(&vec![b'x'; 200 * 1024]).unwrap();
    p.print("fim").unwrap();
    // The lines come through a thread of the host: wait for the last one (they come
    // in order, one stream through one pipe), not for a moment that may be too short.
    wait_until("the last line forwarded", || lines.lock().unwrap().last().is_some_and(|l| l == "fim"));
    let pid = p.process_id().unwrap();
    drop(p);
    wait_dead(pid);
    let lines = lines.lock().unwrap();
    assert_eq!(lines[0], "caf\u{fffd} \u{fffd}");
    assert_eq!(lines[1], "depois");
    // A 200 KiB line arrives in pieces of at most 64 KiB.
    let long: Vec<&String> = lines[2..lines.len() - 1].iter().collect();
    assert!(
        long.len() >= 4 && long.iter().all(|l| l.len() <= 64 * 1024 && l.bytes().all(|b| b == b'x')),
        "{:?}",
        long.iter().map(|l| l.len()).collect::<Vec<_>>()
    );
    assert_eq!(lines.last().unwrap(), "fim");
}

#[test]
fn a_malformed_frame_kills_the_child() {
    let err = survives(|p| p.corrupt_channel(), isolation());
    assert!(matches!(&err, CallError::Channel { message } if message.contains("malformed")), "{err:?}");
}

#[test]
fn crashing_too_often_quarantines_the_plugin() {
    let p = faulty(isolation().crash_budget(2, Duration::from_secs(60)));
    assert!(matches!(p.abort().unwrap_err(), CallError::Crashed { .. }));
    let err = p.abort().unwrap_err();
    assert!(matches!(&err, CallError::Crashed { detail, .. } if detail.contains("crashed 2 times")), "{err:?}");
    let err = p.echo("x").unwrap_err();
    assert!(
        matches!(&err, CallError::Quarantined { crashes: 2, window } if *window == Duration::from_secs(60)),
        "{err:?}"
    );
    assert_eq!(p.process_id(), None);
}

#[test]
fn output_is_forwarded_line_by_line_and_never_corrupts_the_channel() {
    let lines: Arc<Mutex<Vec<(String, Stream, String)>>> = Arc::default();
    let sink = Arc::clone(&lines);
    let p = faulty(isolation().on_output(move |plugin, stream, line| {
        sink.lock().unwrap().push((plugin.to_owned(), stream, line.to_owned()));
    }));
    p.print("olá 1").unwrap();
    p.print("olá 2").unwrap();
    assert_eq!(p.echo("after printing").unwrap(), "after printing");
    // Each stream has a pipe and a forwarding thread of its own: wait for all four
    // lines to come through them.
    wait_until("four lines forwarded", || lines.lock().unwrap().len() >= 4);
    let pid = p.process_id().unwrap();
    drop(p);
    wait_dead(pid);
    let mut got = lines.lock().unwrap().clone();
    // In order within a stream; how the two streams interleave is up to two threads,
    // so they are compared sorted by stream, stdout first.
    got.sort_by(|a, b| (a.1 == Stream::Stderr, &a.2).cmp(&(b.1 == Stream::Stderr, &b.2)));
    let expected = [
        ("faulty", Stream::Stdout, "olá 1"),
        ("faulty", Stream::Stdout, "olá 2"),
        ("faulty", Stream::Stderr, "olá 1 (stderr)"),
        ("faulty", Stream::Stderr, "olá 2 (stderr)"),
    ];
    let got: Vec<(&str, Stream, &str)> = got.iter().map(|(a, s, b)| (a.as_str(), *s, b.as_str())).collect();
    assert_eq!(got, expected);
}

#[test]
fn calls_from_several_threads_at_once() {
    let p = Arc::new(faulty(isolation()));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                for i in 0..100 {
                    let s = format!("thread {t} call {i}");
                    assert_eq!(p.echo(&s).unwrap(), s);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn concurrent_calls_run_at_once_in_the_plugin() {
    // Each `meet(4)` returns true only once four calls are inside the plugin at the
    // same time: served one at a time, the first would wait out its 25 s (a hang
    // guard) and fail. (So did a call left unread by a lost wake-up in the runner's
    // pool: it was read only when the next call came, and none did.)
    let p = faulty(isolation());
    let met: Vec<bool> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..4).map(|_| s.spawn(|| p.meet(4).unwrap())).collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert_eq!(met, [true; 4]);
}

#[test]
fn concurrent_calls_meet_round_after_round() {
    // Four threads meet in the plugin again and again: `meet` counts every call, so
    // round `r`'s `meet(4 * r)` returns true only once all four calls of the round
    // are inside at once (no thread starts its next round before). A call left
    // unread by a lost wake-up (its nudged pool thread found the reading taken, and
    // its holder let go without looking again) is read only when another call comes,
    // and none does until the round ends: the three others wait out their 25 s and
    // return false. Each round is a fresh chance for that race (run beside CPU hogs
    // to make it likelier).
    const ROUNDS: u32 = 200;
    const THREADS: u32 = 4;
    let p = faulty(isolation());
    let met: Vec<u32> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..THREADS)
            .map(|_| s.spawn(|| (1..=ROUNDS).filter(|r| p.meet(THREADS * r).unwrap()).count() as u32))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(met, [ROUNDS; THREADS as usize], "rounds each thread met the others in");
}

/// Waits until `count` calls of `sleep_ms` are inside the plugin.
fn wait_sleeping(p: &Plugin<dyn Faulty>, count: u32) {
    wait_until(&format!("{count} calls inside the plugin at once"), || p.sleeping().unwrap() == count);
}

/// The calls made during the slow one must all be answered before its deadline ends
/// the process: 20 round trips in 15 s, room for a machine hundreds of times busier
/// than an idle one.
#[test]
fn a_slow_call_holds_up_no_other_and_alone_runs_past_its_deadline() {
    let p = faulty(isolation().deadline(Duration::from_secs(15)));
    let pid = p.process_id().unwrap();
    std::thread::scope(|s| {
        let slow = s.spawn(|| p.sleep_ms(600_000));
        wait_sleeping(&p, 1);
        for i in 0..20 {
            let text = format!("meanwhile {i}");
            assert_eq!(p.echo(&text).unwrap(), text, "a call during the slow one");
        }
        assert_eq!(p.process_id(), Some(pid));
        let err = slow.join().unwrap().unwrap_err();
        assert!(matches!(&err, CallError::TimedOut { deadline } if *deadline == Duration::from_secs(15)), "{err:?}");
    });
    wait_dead(pid);
    assert_eq!(p.echo("next").unwrap(), "next");
    assert_ne!(p.process_id(), Some(pid));
}

/// The deadline is only a hang guard: however long the sleepers take to get in, the
/// first one's deadline does not end the process before the crash does.
#[test]
fn a_crash_fails_every_call_in_flight() {
    crash_with_calls_in_flight(isolation(), "no lanes");
}

/// Three calls sleep in the plugin, a fourth aborts it: every call gets the crash,
/// none hangs, and the next call starts a new process.
fn crash_with_calls_in_flight(isolation: Isolation, what: &str) {
    let p = faulty(isolation.deadline(HANG_GUARD));
    let pid = p.process_id().unwrap();
    std::thread::scope(|s| {
        let mut sleepers: Vec<_> = (0..3).map(|_| s.spawn(|| p.sleep_ms(600_000))).collect();
        // (A sleeper that returns before the crash says why, rather than a hang.)
        wait_until("3 calls inside the plugin at once", || {
            if let Some(done) = sleepers.iter().position(|t| t.is_finished()) {
                let early = sleepers.swap_remove(done).join();
                panic!(
                    "{what}: a sleeping call returned before the crash: {early:?}, pid {pid} now {:?}",
                    p.process_id()
                );
            }
            p.sleeping().unwrap() == 3
        });
        let err = p.abort().unwrap_err();
        assert!(matches!(&err, CallError::Crashed { signal: Some(6), .. }), "{what}: {err:?}");
        for sleeper in sleepers {
            let err = sleeper.join().unwrap().unwrap_err();
            assert!(
                matches!(&err, CallError::Crashed { signal: Some(6), detail, .. } if detail.contains("SIGABRT")),
                "{what}: {err:?}"
            );
        }
    });
    wait_dead(pid);
    assert_eq!(p.echo("restarted").unwrap(), "restarted");
}

/// Deadlines are per call: two calls wait in the plugin under the plugin's long
/// deadline, then a third comes with a short one of its own (a `with_deadline` scope),
/// so which deadline passes first does not depend on how busy the machine is.
#[test]
fn a_deadline_kill_fails_the_other_calls_in_flight_as_crashed() {
    let p = faulty(isolation().deadline(Duration::from_secs(600)));
    std::thread::scope(|s| {
        let waiting: Vec<_> = (0..2).map(|_| s.spawn(|| p.sleep_ms(600_000))).collect();
        wait_sleeping(&p, 2);
        let err = tomada_host::isolate::with_deadline(Duration::from_secs(2), || p.sleep_ms(600_000)).unwrap_err();
        assert!(matches!(err, CallError::TimedOut { deadline } if deadline == Duration::from_secs(2)), "{err:?}");
        for call in waiting {
            let err = call.join().unwrap().unwrap_err();
            assert!(
                matches!(&err, CallError::Crashed { signal: Some(9), detail, .. }
                    if detail.contains("another call ran past its deadline")),
                "{err:?}"
            );
        }
    });
    assert_eq!(p.echo("restarted").unwrap(), "restarted");
}

// --- Lanes (`Isolation::lanes`): blocking calls from several threads, each on rings
// of its own when one is free, else through the main rings. (The tests above run
// with the default lanes too, started once two of their calls overlap; with
// `lanes(n)` they start with the process, and a call from one thread takes lane 0.)

/// `threads` threads each calling `echo` 200 times at once: each gets its own answers.
pub fn echoes_from_threads(p: &Plugin<dyn Faulty>, threads: usize, label: &str) {
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for i in 0..200 {
                    let text = format!("{label}, thread {t}, call {i}");
                    assert_eq!(p.echo(&text).unwrap(), text);
                }
            });
        }
    });
}

/// By default a process's lanes start when two of its calls first overlap: calls
/// one after the other, even a thousand, start none (no thread, nothing mapped);
/// a call sent while another waits in the plugin has the child start them, and from
/// then on calls from several threads take them, each answered with its own. With
/// `lanes(n)` they run from the start; with `lanes(0)` never, overlap or not.
#[test]
fn default_lanes_start_when_calls_first_overlap() {
    let p = faulty(isolation().deadline(HANG_GUARD));
    let pid = p.process_id().unwrap();
    for i in 0..1000 {
        assert_eq!(p.echo(&i.to_string()).unwrap(), i.to_string());
    }
    assert_eq!(lane_threads(pid), 0, "lanes started though no calls overlapped");
    // Two calls that meet inside the plugin: each waits there for the other, so
    // whichever is sent second is sent while the first is in flight.
    let overlap = |p: &Plugin<dyn Faulty>| {
        std::thread::scope(|s| {
            let first = s.spawn(|| p.meet(2));
            assert_eq!(p.meet(2), Ok(true), "the calls met");
            assert_eq!(first.join().unwrap(), Ok(true));
        })
    };
    overlap(&p);
    // Twice the CPUs, at most 4. (Each thread names itself once it runs: waited for.)
    let lanes = std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_mul(2).min(4);
    wait_until(&format!("{lanes} lane threads after calls overlapped"), || lane_threads(pid) == lanes);
    echoes_from_threads(&p, 6, "started lanes");
    assert_eq!(lane_threads(pid), lanes, "the lanes started once");
    assert_eq!(p.process_id(), Some(pid), "no call cost the process");

    let eager = faulty(isolation().lanes(3));
    let eager = eager.process_id().unwrap();
    wait_until("`lanes(3)`: three lanes from the start", || lane_threads(eager) == 3);
    let none = faulty(isolation().lanes(0).deadline(HANG_GUARD));
    overlap(&none);
    assert_eq!(lane_threads(none.process_id().unwrap()), 0, "`lanes(0)`: no lane, overlap or not");
}

/// Calls that overlap on the main rings (no lanes) are all read, whichever order they
/// are sent in: rounds of two calls that each wait in the plugin for the other. The
/// call registered first may be sent last, after the other was read and its thread
/// is waiting in the plugin: a call that counted no other in flight when it was
/// registered must still wake a thread of the plugin's process to read it, or it sits
/// in the ring until its deadline. (A thread paused between the two, as a busy machine
/// does now and then, made that happen once in some hundreds of runs.)
#[test]
fn overlapping_calls_on_the_main_rings_are_all_read_in_any_order() {
    let p = faulty(isolation().lanes(0).deadline(HANG_GUARD));
    let pid = p.process_id().unwrap();
    for round in 1..=300u32 {
        // `meet` counts every call the instance had: round r's two meet at 2r.
        std::thread::scope(|s| {
            let first = s.spawn(|| p.meet(2 * round));
            assert_eq!(p.meet(2 * round), Ok(true), "round {round}: the calls met");
            assert_eq!(first.join().unwrap(), Ok(true), "round {round}: the calls met");
        });
    }
    assert_eq!(p.process_id(), Some(pid), "no call cost the process");
}

/// Eight threads calling at once through four lanes, then through one: every answer
/// is its own caller's, whichever rings carried it, and the process stays the same.
#[test]
fn many_threads_each_get_their_own_answers_through_lanes_and_the_main_rings() {
    for lanes in [4, 1] {
        let p = faulty(isolation().lanes(lanes));
        let pid = p.process_id();
        echoes_from_threads(&p, 8, &format!("{lanes} lanes"));
        assert_eq!(p.process_id(), pid, "no call cost the process");
    }
}

/// With its only lane taken (a call sleeping in the plugin), calls from other threads
/// go through the main rings, and are answered meanwhile; a crash from the main rings
/// then fails the call on the lane too, and the next calls take a new process's lane.
#[test]
fn calls_that_find_no_free_lane_go_through_the_main_rings() {
    let p = faulty(isolation().lanes(1).deadline(HANG_GUARD));
    let pid = p.process_id().unwrap();
    std::thread::scope(|s| {
        let on_lane = s.spawn(|| p.sleep_ms(600_000));
        wait_sleeping(&p, 1);
        for i in 0..20 {
            let text = format!("beside the lane {i}");
            assert_eq!(p.echo(&text).unwrap(), text);
        }
        let err = p.abort().unwrap_err();
        assert!(matches!(&err, CallError::Crashed { signal: Some(6), .. }), "{err:?}");
        let err = on_lane.join().unwrap().unwrap_err();
        assert!(matches!(&err, CallError::Crashed { signal: Some(6), .. }), "the call on the lane: {err:?}");
    });
    wait_dead(pid);
    assert_eq!(p.echo("restarted").unwrap(), "restarted");
}

/// A crash while four threads are in calls, on lanes (three sleeping, the fourth
/// aborts; then with two lanes, so that one sleeper is on the main rings): every call
/// gets the crash, none hangs (the deadline is only a hang guard).
#[test]
fn a_crash_fails_the_calls_on_every_lane() {
    for lanes in [4, 2] {
        crash_with_calls_in_flight(isolation().lanes(lanes), &format!("{lanes} lanes"));
    }
}

/// A panic in a call on a lane, while calls on the other lanes sleep: an error for
/// that call alone; the others are answered, and the process lives on.
#[test]
fn a_panic_on_a_lane_is_that_calls_error_alone() {
    let p = faulty(isolation().lanes(4).deadline(HANG_GUARD));
    let pid = p.process_id().unwrap();
    std::thread::scope(|s| {
        let sleepers: Vec<_> = (0..2).map(|_| s.spawn(|| p.sleep_ms(300))).collect();
        wait_sleeping(&p, 2);
        let err = p.panic("on a lane").unwrap_err();
        assert!(matches!(&err, CallError::Panicked { message } if message.starts_with("on a lane (at ")), "{err:?}");
        for sleeper in sleepers {
            assert!(sleeper.join().unwrap().is_ok());
        }
    });
    assert_eq!(p.process_id(), Some(pid), "a caught panic does not cost the process");
    assert_eq!(p.echo("after").unwrap(), "after");
}

#[test]
fn every_type_crosses_to_an_isolated_plugin() {
    use allround_api::{Allround, Failure, Nothing, Person, Point};
    let p = tomada_host::load_with::<dyn Allround>(cdylib("allround"), &Mode::Isolated(isolation())).unwrap();
    assert_eq!(p.add(40, 2).unwrap(), 42);
    assert_eq!(p.upper("olá").unwrap(), "OLÁ");
    assert_eq!(p.concat("a".into(), "b").unwrap(), "ab");
    assert_eq!(p.reverse(&[1, 2, 3]).unwrap(), vec![3, 2, 1]);
    assert_eq!(p.divide(1, 0).unwrap(), Err("cannot divide 1 by 0".into()));
    assert_eq!(
        p.check(Err(Failure { code: 1, message: "m".into() })).unwrap(),
        Err(Failure { code: 2, message: "m".into() })
    );
    assert_eq!(p.nested(Some(Err(Nothing))).unwrap(), Some(Err(Nothing)));
    assert_eq!(p.sum(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 1.0, 2.0, true, 'A').unwrap(), 78 + 3 + 1 + 65);
    let person = Person { name: "ana".into(), age: 1, nickname: None, photo: vec![], position: Point(1.0, 2.0) };
    assert_eq!(p.birthday(person).unwrap().name, "ANA");
    p.touch().unwrap();
    assert_eq!(p.touches().unwrap(), 1);
}

/// Bulk bytes through every byte type, byte-exact, with sizes growing and shrinking
/// (from nothing to several times the shared rings' size and back), so buffers that
/// both sides keep from one call to the next (the plugin's process reads a call into
/// the last one's buffer, the host encodes into its thread's) are reused at every
/// size: a buffer larger than the call never leaks its old bytes into it, a smaller
/// one grows. `&[u8]` and `&str` arguments are borrowed from the call's buffer on
/// the plugin's side; `Vec<u8>` and `String` answers are read without their length.
#[test]
fn bulk_bytes_cross_byte_exact_at_every_size_through_every_byte_type() {
    use allround_api::{Allround, Person, Point};
    let p = tomada_host::load_with::<dyn Allround>(cdylib("allround"), &Mode::Isolated(isolation())).unwrap();
    // A pattern that no shift or stale buffer reproduces: byte i of call n.
    let pattern = |n: usize, len: usize| -> Vec<u8> { (0..len).map(|i| (i * 31 + n * 7 + i / 251) as u8).collect() };
    let sizes = [0, 1, 7, 8, 9, 65_535, 1 << 20, (3 << 20) + 5, 100, 5 << 20, 1, (1 << 20) - 3, 0, 2 << 20, 17];
    for (n, &len) in sizes.iter().enumerate() {
        let bytes = pattern(n, len);
        let reversed: Vec<u8> = bytes.iter().rev().copied().collect();
        assert!(p.reverse(&bytes).unwrap() == reversed, "reverse of {len} bytes (call {n})");
        assert_eq!(p.len(bytes.clone()).unwrap(), len as u64, "len of {len} bytes");
        // ASCII text in both string forms (halves of it), a `String` back.
        let text: String = bytes.iter().map(|b| char::from(b'a' + b % 26)).collect();
        let (owned, borrowed) = text.split_at(len / 2);
        assert!(p.concat(owned.to_owned(), borrowed).unwrap() == text, "concat of {len} bytes");
        assert!(p.upper(&text).unwrap() == text.to_uppercase(), "upper of {len} bytes");
        // Bytes held in a struct, each way.
        let person =
            Person { name: "ana".into(), age: 1, nickname: None, photo: bytes.clone(), position: Point(1.0, 2.0) };
        let older = p.birthday(person).unwrap();
        let mut photo = bytes;
        photo.push(0xFF);
        assert!(older.photo == photo, "a photo of {len} bytes");
        assert_eq!((older.name.as_str(), older.age), ("ANA", 2));
    }
}

/// Byte-string answers (a `Vec<u8>`, a `String`) are sent from the plugin's own
/// buffer, their length written before them by the runner (`flags::BYTES_ALONE`):
/// byte-exact at the sizes where the shared ring (2 MiB, published in 64 KiB chunks;
/// 512 KiB before), the reader's 4 KiB batch and 64 KiB buffer and a frame's head meet,
/// and at several MiB; growing and shrinking, so a reused buffer never shows through.
#[test]
fn byte_answers_cross_byte_exact_at_the_edges_of_the_ring_and_the_buffers() {
    use allround_api::{Allround, Person, Point};
    let p = tomada_host::load_with::<dyn Allround>(cdylib("allround"), &Mode::Isolated(isolation())).unwrap();
    const KIB: usize = 1024;
    // A reply's frame: 4 + 10 bytes of head, 8 of length, then the bytes.
    let framed = |total: usize| total - 14 - 8;
    let mut sizes = vec![0, 1, 2, 0];
    for edge in [4 * KIB, 64 * KIB, 512 * KIB, 1024 * KIB, 2048 * KIB] {
        // (A call's frame: 14 bytes of head, 28 of request head, 8 of length.)
        sizes.extend([edge - 1, edge, edge + 1, framed(edge) - 1, framed(edge), framed(edge) + 1, edge - 50]);
    }
    sizes.extend([(7 << 20) + 3, 1, 512 * KIB + 1, 0, 3 << 20, 64 * KIB]);
    for (n, &len) in sizes.iter().enumerate() {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 13 + n * 5 + i / 509) as u8).collect();
        let reversed: Vec<u8> = bytes.iter().rev().copied().collect();
        let got = p.reverse(&bytes).unwrap();
        assert!(got == reversed, "reverse of {len} bytes (call {n}): {} bytes back", got.len());
        let text: String = bytes.iter().map(|b| char::from(b'a' + b % 26)).collect();
        let got = p.upper(&text).unwrap();
        assert!(got == text.to_uppercase(), "upper of {len} bytes (call {n}): {} bytes back", got.len());
        assert!(p.or_default(Some(text.clone())).unwrap() == text, "or_default of {len} bytes (call {n})");
        // A value that holds bytes but is not a byte string: its byte form, as before.
        let person =
            Person { name: "ana".into(), age: 1, nickname: None, photo: bytes.clone(), position: Point(1.0, 2.0) };
        let photo = p.birthday(person).unwrap().photo;
        assert!(photo.len() == len + 1 && photo[..len] == bytes[..], "birthday, a photo of {len} bytes (call {n})");
    }
    // Small calls after large ones still answer.
    assert_eq!(p.add(2, 3).unwrap(), 5);
}

/// The child dies with the host: a helper process (this binary, re-run) loads an
/// isolated plugin, reports the plugin's pid, and is killed; the plugin's process
/// must follow.
#[test]
#[ignore = "helper process of `the_child_dies_with_the_host`"]
fn host_helper() {
    if std::env::var_os("TOMADA_HOST_HELPER").is_none() {
        return;
    }
    let p = faulty(isolation());
    println!("\nplugin-pid: {}", p.process_id().unwrap());
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn the_child_dies_with_the_host() {
    use std::io::BufRead;
    let mut helper = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "isolate::host_helper", "--nocapture", "--test-threads=1"])
        .env("TOMADA_HOST_HELPER", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(helper.stdout.take().unwrap());
    let pid: u32 = stdout
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.split_once("plugin-pid: ").map(|(_, p)| p.trim().parse().unwrap()))
        .expect("the helper reports the plugin's pid");
    assert!(!is_dead(pid));
    helper.kill().unwrap();
    helper.wait().unwrap();
    wait_dead(pid);
}

#[test]
fn nothing_is_left_behind() {
    let p = faulty(isolation());
    let pid = p.process_id().unwrap();
    drop(p);
    assert!(
        is_dead(pid) || {
            wait_dead(pid);
            true
        }
    );
    assert!(Path::new("/proc/self").exists());
}

mod sandbox {
    use tomada_host::isolate::Sandbox;

    use super::*;

    /// A directory the sandboxed plugin may write to, and one it may not. (On a root
    /// host a sandboxed plugin runs as uid 65534: the granted one is given to it.)
    fn dirs() -> (tempfile::TempDir, tempfile::TempDir) {
        let granted = tempfile::tempdir().unwrap();
        // SAFETY: `geteuid` has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(granted.path(), Some(65534), Some(65534)).unwrap();
        }
        (granted, tempfile::tempdir().unwrap())
    }

    #[test]
    fn an_unsandboxed_plugin_can_do_everything() {
        let (_granted, other) = dirs();
        let p = faulty(isolation());
        let target = other.path().join("escape.txt");
        assert!(p.try_network().unwrap().is_ok(), "network");
        assert!(p.try_write(target.to_str().unwrap()).unwrap().is_ok(), "write");
        assert!(target.exists());
        assert!(p.try_exec().unwrap().is_ok(), "exec");
    }

    #[test]
    fn a_sandboxed_plugin_is_stopped() {
        let (granted, other) = dirs();
        let sandbox = Sandbox::strict().allow_write(granted.path());
        let p = faulty(isolation().sandbox(sandbox));

        let net = p.try_network().unwrap();
        assert!(net.as_ref().is_err_and(|e| e.contains("Operation not permitted")), "network: {net:?}");

        let outside = other.path().join("escape.txt");
        let write = p.try_write(outside.to_str().unwrap()).unwrap();
        assert!(write.as_ref().is_err_and(|e| e.contains("Permission denied")), "write outside: {write:?}");
        assert!(!outside.exists());

        let inside = granted.path().join("allowed.txt");
        assert_eq!(p.try_write(inside.to_str().unwrap()).unwrap(), Ok(format!("wrote {}", inside.display())));

        let exec = p.try_exec().unwrap();
        assert!(exec.as_ref().is_err_and(|e| e.contains("Operation not permitted")), "exec: {exec:?}");

        // The plugin itself still works.
        assert_eq!(p.echo("sandboxed").unwrap(), "sandboxed");
    }

    #[test]
    fn each_restriction_is_separate() {
        // (The plugin's own directory: on a root host a sandboxed plugin runs as 65534.)
        let (own, _other) = dirs();
        let p = faulty(isolation().sandbox(Sandbox::new().deny_network()));
        assert!(p.try_network().unwrap().is_err());
        assert!(p.try_exec().unwrap().is_ok());
        assert!(p.try_write(own.path().join("f").to_str().unwrap()).unwrap().is_ok());

        let p = faulty(isolation().sandbox(Sandbox::new().deny_exec()));
        assert!(p.try_exec().unwrap().is_err());
        assert!(p.try_network().unwrap().is_ok());
    }

    #[test]
    fn the_initialisers_already_run_inside_the_filesystem_sandbox() {
        // The faulty fixture's initialiser writes `TOMADA_MARKER` when the library
        // is opened. Unsandboxed, it does; with a read-only filesystem it cannot,
        // because the sandbox is in place before `dlopen`.
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("initialiser-ran");
        let p = faulty(isolation().env("TOMADA_MARKER", &marker));
        assert!(marker.exists(), "control: the initialiser writes the marker");
        drop(p);
        std::fs::remove_file(&marker).unwrap();

        let p = faulty(isolation().env("TOMADA_MARKER", &marker).sandbox(Sandbox::new().read_only_filesystem()));
        assert_eq!(p.echo("loaded").unwrap(), "loaded");
        assert!(!marker.exists(), "the initialiser wrote outside the sandbox");
    }
}

/// A spare runner (`Isolation::spare_runner`): real processes, found through `/proc`
/// by a variable of their environment that names the test (tests run side by side in
/// this process).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod spare {
    use std::sync::Barrier;

    use tomada_host::isolate::Sandbox;

    use super::*;

    /// The variable every process of a test carries.
    const MARK: &str = "TOMADA_SPARE_TEST";

    /// Options with spares, every process marked with `test`.
    fn spared(test: &str) -> Isolation {
        isolation().spare_runner(true).env(MARK, test)
    }

    /// The live processes (any, children or not) whose environment has `test`'s mark.
    fn marked(test: &str) -> Vec<u32> {
        let needle = format!("{MARK}={test}\0");
        let mut pids: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|&pid: &u32| {
                let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
                environ.windows(needle.len()).any(|w| w == needle.as_bytes()) && !is_dead(pid)
            })
            .collect();
        pids.sort();
        pids
    }

    /// This process's children with `test`'s mark that are not one of `plugins`'
    /// processes: its spares.
    fn spares(test: &str, plugins: &[u32]) -> Vec<u32> {
        let me = std::process::id().to_string();
        marked(test)
            .into_iter()
            .filter(|pid| !plugins.contains(pid))
            .filter(|pid| {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                status.lines().any(|l| l.strip_prefix("PPid:").is_some_and(|p| p.trim() == me))
            })
            .collect()
    }

    /// Waits for the one spare of `test` (a hang guard only), and returns its pid.
    fn wait_spare(test: &str, plugins: &[u32]) -> u32 {
        wait_until("a spare runner", || spares(test, plugins).len() == 1);
        let found = spares(test, plugins);
        assert_eq!(found.len(), 1, "one spare at most: {found:?}");
        found[0]
    }

    /// Once every plugin of `test` is dropped, no process of it is left: not the spare,
    /// not a zombie.
    fn wait_none_left(test: &str) {
        wait_until("no process left", || marked(test).is_empty());
    }

    fn pid(p: &Plugin<dyn Faulty>) -> u32 {
        p.process_id().unwrap()
    }

    #[test]
    fn the_next_start_takes_the_spare_and_a_new_one_is_started() {
        let test = "taken";
        // (One lane: 2 descriptors more, at 11-12.)
        let a = faulty(spared(test).lanes(1));
        let spare = wait_spare(test, &[pid(&a)]);
        // Idle, it holds nothing of any plugin: its channel and stdio only (at 4, the
        // plugin file's number, `/dev/null` until the file comes), and no library
        // mapped but the runner's own.
        let fds = |pid: u32| {
            let mut fds: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            fds.sort();
            fds
        };
        // (Waited for: a spare just started may still be in `ld.so`, which opens each
        // library it loads at the next free number, 13 here, and closes it.)
        wait_until("the spare idle, with its descriptors only", || fds(spare) == (0..=12).collect::<Vec<u32>>());
        assert_eq!(std::fs::read_link(format!("/proc/{spare}/fd/4")).unwrap(), Path::new("/dev/null"));
        let maps = std::fs::read_to_string(format!("/proc/{spare}/maps")).unwrap();
        assert!(!maps.contains("faulty"), "{maps}");
        let b = faulty(spared(test).lanes(1));
        assert_eq!(pid(&b), spare, "the second plugin runs in the spare");
        assert_eq!(b.echo("from the spare").unwrap(), "from the spare");
        // The same descriptors as a runner started for it (the plugin file came over
        // the socket and sits at 4).
        let fds = b.open_fds().unwrap();
        assert_eq!(&fds[..13], &(0..=12).collect::<Vec<u8>>(), "{fds:?}");
        assert_eq!(fds.len(), 14, "{fds:?}");
        // A new spare, which a restart after a crash takes.
        let next = wait_spare(test, &[pid(&a), spare]);
        assert_ne!(next, spare);
        assert!(matches!(b.abort(), Err(CallError::Crashed { .. })));
        assert_eq!(b.echo("again").unwrap(), "again");
        assert_eq!(pid(&b), next, "the restart runs in the spare");
        let last = wait_spare(test, &[pid(&a), next]);
        // The spare lives as long as a plugin with the option does.
        drop(a);
        assert!(!is_dead(last));
        drop(b);
        wait_dead(last);
        wait_none_left(test);
    }

    #[test]
    fn a_killed_spare_is_replaced_silently_and_counts_as_no_crash() {
        let test = "killed";
        // One crash would quarantine: the spare's death is none of the plugin's.
        let options = spared(test).crash_budget(1, Duration::from_secs(600));
        let a = faulty(options.clone());
        let spare = wait_spare(test, &[pid(&a)]);
        // SAFETY: `kill` takes integers; the spare is this process's child, not reaped.
        assert_eq!(unsafe { libc::kill(spare as i32, libc::SIGKILL) }, 0);
        wait_dead(spare);
        let b = faulty(options.clone());
        assert_ne!(pid(&b), spare);
        assert_eq!(b.echo("fresh").unwrap(), "fresh");
        assert_eq!(a.echo("still here").unwrap(), "still here");
        // The dead spare was reaped (no zombie), and another one started.
        wait_until("the dead spare reaped", || !Path::new(&format!("/proc/{spare}")).exists());
        let next = wait_spare(test, &[pid(&a), pid(&b)]);
        assert_ne!(next, spare);
        drop((a, b));
        wait_none_left(test);
    }

    #[test]
    fn a_spare_started_with_other_parameters_is_not_taken() {
        let test = "other";
        let a = faulty(spared(test));
        let spare = wait_spare(test, &[pid(&a)]);
        // A variable the spare was not started with: a runner of its own, which has it.
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("initialiser-ran");
        let b = faulty(spared(test).env("TOMADA_MARKER", &marker));
        assert_ne!(pid(&b), spare);
        assert!(marker.exists(), "the plugin's process has its variable");
        let environ = |pid: u32| std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(environ(pid(&b)).windows(13).any(|w| w == b"TOMADA_MARKER"));
        assert!(!environ(spare).windows(13).any(|w| w == b"TOMADA_MARKER"), "nothing leaks into the spare");
        // Another frame limit: not taken either. The same parameters: taken.
        let c = faulty(spared(test).max_frame(1 << 20));
        assert_ne!(pid(&c), spare);
        let d = faulty(spared(test));
        assert_eq!(pid(&d), spare);
        drop((a, b, c, d));
        wait_none_left(test);
    }

    #[test]
    fn two_starts_at_once_share_no_spare() {
        let test = "two";
        let a = faulty(spared(test));
        let spare = wait_spare(test, &[pid(&a)]);
        let barrier = Barrier::new(2);
        let (b, c) = std::thread::scope(|s| {
            let start = || {
                barrier.wait();
                faulty(spared(test))
            };
            let b = s.spawn(start);
            let c = s.spawn(start);
            (b.join().unwrap(), c.join().unwrap())
        });
        assert_ne!(pid(&b), pid(&c));
        assert!(pid(&b) == spare || pid(&c) == spare, "one of them took the spare");
        assert_eq!((b.echo("b").unwrap(), c.echo("c").unwrap()), ("b".to_owned(), "c".to_owned()));
        drop((a, b, c));
        wait_none_left(test);
    }

    /// The host of `a_spare_dies_with_the_host`: loads a plugin with the option,
    /// reports its spare's pid, and waits to be killed.
    #[test]
    #[ignore = "helper process of `a_spare_dies_with_the_host`"]
    fn spare_host_helper() {
        if std::env::var_os("TOMADA_SPARE_HELPER").is_none() {
            return;
        }
        let test = "helper";
        let a = faulty(spared(test));
        println!("\nspare-pid: {}", wait_spare(test, &[pid(&a)]));
        std::thread::sleep(Duration::from_secs(600));
    }

    #[test]
    fn a_spare_dies_with_the_host() {
        use std::io::BufRead;
        let mut helper = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "isolate::spare::spare_host_helper", "--nocapture", "--test-threads=1"])
            .env("TOMADA_SPARE_HELPER", "1")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(helper.stdout.take().unwrap());
        let spare: u32 = stdout
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.split_once("spare-pid: ").map(|(_, p)| p.trim().parse().unwrap()))
            .expect("the helper reports its spare's pid");
        assert!(!is_dead(spare));
        helper.kill().unwrap();
        helper.wait().unwrap();
        wait_dead(spare);
    }

    #[test]
    fn an_untaken_spare_holds_no_plugins_output() {
        let test = "output";
        // `a`'s output closure, held by its processes' forwarders.
        let mine = Arc::new(());
        let held = Arc::clone(&mine);
        let with_output = spared(test).on_output(move |_, _, _| {
            let _ = &held;
        });
        let a = faulty(with_output);
        let first = wait_spare(test, &[pid(&a)]);
        let b = faulty(spared(test));
        assert_eq!(pid(&b), first);
        let second = wait_spare(test, &[pid(&a), first]);
        // `a` restarts in the second spare, whose start then starts a third one: that
        // one, which outlives `a` (`b` keeps it), is none of `a`'s.
        assert!(matches!(a.abort(), Err(CallError::Crashed { .. })));
        assert_eq!(a.echo("again").unwrap(), "again");
        assert_eq!(pid(&a), second);
        let third = wait_spare(test, &[pid(&a), first]);
        assert_ne!(third, second);
        drop(a);
        wait_dead(second);
        wait_until("a's output closure released", || Arc::strong_count(&mine) == 1);
        assert_eq!(Arc::strong_count(&mine), 1, "the spare holds a dropped plugin's output closure");
        assert!(!is_dead(third));
        drop(b);
        wait_none_left(test);
    }

    /// The host of `a_spare_started_in_another_directory_is_not_taken`: changes its
    /// directory (a process-wide change, hence a process of its own).
    #[test]
    #[ignore = "helper process of `a_spare_started_in_another_directory_is_not_taken`"]
    fn spare_cwd_helper() {
        if std::env::var_os("TOMADA_SPARE_HELPER").is_none() {
            return;
        }
        let test = "cwd";
        let a = faulty(spared(test));
        let spare = wait_spare(test, &[pid(&a)]);
        let cwd = |pid: u32| std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let elsewhere = elsewhere.path().canonicalize().unwrap();
        std::env::set_current_dir(&elsewhere).unwrap();
        let b = faulty(spared(test));
        assert_ne!(pid(&b), spare, "a spare started in another directory is not taken");
        assert_eq!(cwd(pid(&b)), elsewhere);
        wait_dead(spare);
        // The next spare, started here, is taken.
        let next = wait_spare(test, &[pid(&a), pid(&b)]);
        assert_eq!(cwd(next), elsewhere);
        let c = faulty(spared(test));
        assert_eq!(pid(&c), next);
        assert_eq!(c.echo("here").unwrap(), "here");
        drop((a, b, c));
        wait_none_left(test);
        println!("\nspare-cwd: checked");
    }

    #[test]
    fn a_spare_started_in_another_directory_is_not_taken() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "isolate::spare::spare_cwd_helper", "--nocapture", "--test-threads=1"])
            .env("TOMADA_SPARE_HELPER", "1")
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && stdout.contains("spare-cwd: checked"), "{stdout}\n{stderr}");
    }

    #[test]
    fn a_spare_is_sandboxed_when_taken() {
        let test = "sandboxed";
        let options = spared(test).sandbox(Sandbox::strict());
        let a = faulty(options.clone());
        let spare = wait_spare(test, &[pid(&a)]);
        let b = faulty(options);
        assert_eq!(pid(&b), spare);
        let other = tempfile::tempdir().unwrap();
        let net = b.try_network().unwrap();
        assert!(net.as_ref().is_err_and(|e| e.contains("Operation not permitted")), "network: {net:?}");
        let outside = other.path().join("escape.txt");
        assert!(b.try_write(outside.to_str().unwrap()).unwrap().is_err(), "write");
        assert!(b.try_exec().unwrap().is_err(), "exec");
        assert_eq!(b.echo("sandboxed").unwrap(), "sandboxed");
        // A plugin without a sandbox may take the next spare: the spare holds none.
        let _next = wait_spare(test, &[pid(&a), spare]);
        drop((a, b));
        wait_none_left(test);
    }
}

/// Isolated plugins started from one unchanged file share one sealed copy: the host
/// copies the file once, and its children map the same pages. A file rewritten in
/// place (the same inode) is copied anew, and the plugins already running keep the
/// copy they were checked with. In-process loads never share.
#[cfg(target_os = "linux")]
mod shared_copy {
    use super::*;
    use std::io::Write;
    use tomada_test_support::{Build, copy_to, held_copies, wait_older};

    #[test]
    fn isolated_plugins_of_one_unchanged_file_share_its_sealed_copy() {
        // Under target/ (ext4 here): only local file systems share copies.
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let name = "shared-copy-living.so";
        let path = copy_to(&cdylib("living"), dir.path(), name);
        let v2 = std::fs::read(Build::new("living").config("env.LIVING_VERSION=\"2.0.0\"").cdylib()).unwrap();
        // Only a file whose change time is settled is shared (`file::shared::SETTLED`).
        wait_older(&path, Duration::from_secs(3));
        let mode = Mode::Isolated(isolation());
        let a = tomada_host::load_with::<dyn Greeter>(&path, &mode).unwrap();
        let b = tomada_host::load_with::<dyn Greeter>(&path, &mode).unwrap();
        assert_ne!(a.process_id(), b.process_id());
        assert_eq!(a.greet("Mundo").unwrap(), "Olá, Mundo (v1.0.0)");
        assert_eq!(b.greet("Mundo").unwrap(), "Olá, Mundo (v1.0.0)");
        let shared = held_copies(name) == 1;
        if !shared && !sharing_here(dir.path()) {
            return;
        }
        assert!(shared, "two isolated plugins of one unchanged file, {} copies", held_copies(name));
        // In-process, a load has a copy (a library) of its own, even inspected by an
        // isolated-mode loader.
        let local = tomada_host::load::<dyn Greeter>(&path).unwrap();
        assert_eq!(held_copies(name), 2);
        let loader = tomada_host::Loader::new().isolated(isolation());
        let local_too = loader.inspect(&path).unwrap().check::<dyn Greeter>().unwrap().load().unwrap();
        assert_eq!(local_too.greet("Mundo").unwrap(), "Olá, Mundo (v1.0.0)");
        assert_eq!(held_copies(name), 3);
        assert_eq!(tomada_test_support::mapped_copies(name), 2, "two in-process loads, two libraries");
        drop((local, local_too));

        // Rewritten in place (the same inode, the next version's bytes), then settled
        // while the first copy lives.
        let mut file = std::fs::OpenOptions::new().write(true).truncate(true).open(&path).unwrap();
        file.write_all(&v2).unwrap();
        drop(file);
        wait_older(&path, Duration::from_secs(3));
        let c = tomada_host::load_with::<dyn Greeter>(&path, &mode).unwrap();
        assert_eq!(c.greet("Mundo").unwrap(), "Olá, Mundo (v2.0.0)", "a rewritten file is copied anew");
        assert_eq!(a.greet("Mundo").unwrap(), "Olá, Mundo (v1.0.0)");
        wait_until("the in-process copies' release", || held_copies(name) == 2);

        // The copy lives as long as a plugin holding it, not longer.
        drop(a);
        assert_eq!(held_copies(name), 2);
        // (Waited for, not timed: nothing says a plugin's end is synchronous.)
        drop(b);
        wait_until("the first copy's release", || held_copies(name) == 1);
        drop(c);
        wait_until("the second copy's release", || held_copies(name) == 0);
    }

    /// A plugin whose sandbox lets it change file metadata could `fchmod` a shared
    /// copy and make the other processes' loads of it fail: such plugins share with
    /// none; plugins whose sandbox refuses it (`read_only_filesystem`, set by
    /// `Sandbox::strict`) share among themselves, apart from the unsandboxed ones.
    #[test]
    fn only_plugins_that_cannot_change_the_copys_mode_share_it() {
        use tomada_host::isolate::Sandbox;
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let name = "shared-copy-classes.so";
        let path = copy_to(&cdylib("living"), dir.path(), name);
        wait_older(&path, Duration::from_secs(3));
        let load = |mode: &Mode| tomada_host::load_with::<dyn Greeter>(&path, mode).unwrap();
        let loose = Mode::Isolated(isolation().sandbox(Sandbox::new().deny_network()));
        let (a, b) = (load(&loose), load(&loose));
        assert_eq!(a.greet("Mundo").unwrap(), "Olá, Mundo (v1.0.0)");
        assert_eq!(b.greet("Mundo").unwrap(), "Olá, Mundo (v1.0.0)");
        assert_eq!(held_copies(name), 2, "plugins that may chmod share a copy");
        if !sharing_here(dir.path()) {
            return;
        }
        let strict = Mode::Isolated(isolation().sandbox(Sandbox::strict()));
        let (c, d) = (load(&strict), load(&strict));
        assert_eq!(c.greet("Mundo").unwrap(), "Olá, Mundo (v1.0.0)");
        assert_eq!(d.greet("Mundo").unwrap(), "Olá, Mundo (v1.0.0)");
        assert_eq!(held_copies(name), 3, "two strict plugins, one copy of their own");
        let (e, f) = (load(&Mode::Isolated(isolation())), load(&Mode::Isolated(isolation())));
        assert_eq!(e.greet("Mundo").unwrap(), "Olá, Mundo (v1.0.0)");
        assert_eq!(f.greet("Mundo").unwrap(), "Olá, Mundo (v1.0.0)");
        assert_eq!(held_copies(name), 4, "two unsandboxed plugins, one copy of their own");
    }

    /// Whether copies are shared here: this kernel names mounts uniquely
    /// (`STATX_MNT_ID_UNIQUE`, Linux 6.8) and `dir` is on a local file system
    /// (ext2/3/4, xfs, btrfs, f2fs, tmpfs); says why not. (Where both hold, the tests
    /// above must share.)
    fn sharing_here(dir: &Path) -> bool {
        let mut stx = std::mem::MaybeUninit::<libc::statx>::zeroed();
        let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `statx` of a path we own, into a zeroed struct large enough for it.
        let rc = unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), 0, libc::STATX_MNT_ID_UNIQUE, stx.as_mut_ptr()) };
        // SAFETY: filled by `statx` on success, zeroed otherwise.
        let unique = rc == 0 && unsafe { stx.assume_init() }.stx_mask & libc::STATX_MNT_ID_UNIQUE != 0;
        let mut fs = std::mem::MaybeUninit::<libc::statfs>::zeroed();
        // SAFETY: `statfs` of a path we own, into a zeroed struct large enough for it.
        let rc = unsafe { libc::statfs(c.as_ptr(), fs.as_mut_ptr()) };
        // SAFETY: filled by `statfs` on success, zeroed otherwise.
        let kind = unsafe { fs.assume_init() }.f_type as u32;
        let local = rc == 0 && [0xEF53, 0x5846_5342, 0x9123_683E, 0xF2F5_2010, 0x0102_1994].contains(&kind);
        if !unique || !local {
            eprintln!(
                "skipped: no copy is shared here (unique mount ids, Linux 6.8: {unique}; {} on a local file system: {local})",
                dir.display()
            );
        }
        unique && local
    }
}

/// Options that cannot start a plugin are refused before a process starts, with the
/// option named (they were a process dying before it greeted the host, a SIGSEGV
/// under a 1 MB memory limit, or calls that all timed out).
#[test]
fn isolation_options_that_cannot_run_a_plugin_are_refused_by_name() {
    let cases = [
        (isolation().deadline(Duration::ZERO), "Isolation::deadline"),
        (isolation().startup(Duration::ZERO), "Isolation::startup"),
        (isolation().memory_limit(1_000_000), "Isolation::memory_limit"),
        (isolation().cpu_seconds(0), "Isolation::cpu_seconds"),
    ];
    for (options, named) in cases {
        let err = tomada_host::load_with::<dyn Greeter>(cdylib("greeter"), &Mode::Isolated(options)).unwrap_err();
        assert!(
            matches!(&err, LoadError::Isolation { source: tomada_host::LaunchError::BadOptions { .. }, .. }),
            "{named}: {err:?}"
        );
        assert!(err.to_string().contains(named), "{named}: {err}");
    }
    // The smallest memory limit accepted starts the plugin, and it answers.
    let plugin =
        tomada_host::load_with::<dyn Greeter>(cdylib("greeter"), &Mode::Isolated(isolation().memory_limit(16 << 20)))
            .unwrap();
    assert_eq!(greet(&plugin), "Olá, Mundo 👋");
}

/// A frame limit set small for calls does not stop the plugin from starting: the
/// start's own messages (the load request, 651 bytes for the greeter) have a limit
/// of their own (they failed the load under `max_frame(256)`). Calls keep the limit.
#[test]
fn a_small_frame_limit_still_starts_the_plugin_and_bounds_its_calls() {
    let plugin =
        tomada_host::load_with::<dyn Greeter>(cdylib("greeter"), &Mode::Isolated(isolation().max_frame(256))).unwrap();
    assert_eq!(greet(&plugin), "Olá, Mundo 👋");
    let long = "x".repeat(1000);
    let err = plugin.greet(&long).unwrap_err();
    assert!(matches!(&err, CallError::Channel { message } if message.contains("max_frame")), "{err:?}");
}

/// An instance whose `Drop` never ends (its process stopped, here: it never answers),
/// dropped while an object it made is held: `drop(Plugin)` returns at the call
/// deadline, the process is killed, and the held object's next call says the
/// instance's `Drop` ran late — not "another call ran past its deadline" (no call
/// did).
#[test]
fn a_drop_past_the_deadline_is_named_to_the_objects_still_held() {
    use indexer_api::Indexer;
    let options = isolation().deadline(Duration::from_secs(5));
    let plugin = tomada_host::load_with::<dyn Indexer>(cdylib("indexer"), &Mode::Isolated(options)).unwrap();
    plugin.index("fig date", &crate::objects::Recorder::new(vec![]).1).unwrap();
    let cursor = plugin.open("d").unwrap();
    let pid = plugin.process_id().unwrap();
    // The process that runs the plugin (below the runner's supervisor and the PID
    // namespace's init), and every process under it: stopped, they answer nothing.
    let mut stopped = 0;
    let mut under = vec![pid];
    while let Some(p) = under.pop() {
        let children = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        for child in children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()) {
            // SAFETY: `kill` with a valid signal number and a process of the plugin's.
            assert_eq!(unsafe { libc::kill(child as i32, libc::SIGSTOP) }, 0);
            stopped += 1;
            under.push(child);
        }
    }
    assert!(stopped > 0, "the plugin runs in a child of process {pid}");
    within("drop(Plugin) of a stopped process", move || drop(plugin));
    wait_dead(pid);
    let err = cursor.next().unwrap_err();
    let CallError::Crashed { detail, .. } = &err else { panic!("{err:?}") };
    assert!(detail.contains("the plugin instance's `Drop` ran past the call deadline"), "{detail}");
}
