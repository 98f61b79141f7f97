//! Issue 16, items 1 and 5, each attack a real plugin (`tests/plugins/sandbox-attacker`)
//! against an isolated host:
//! - a `&dyn Probe` lent for one call is never used by the host after that call
//!   returned, whichever route the plugin takes to call it later (its own thread; or
//!   another call in flight named as the parent);
//! - no host thread waits on the plugin past a deadline: not on a nudge pipe or bell the
//!   plugin filled, not on a ring the plugin claims is full (a call fails at its
//!   deadline; dropping the `Plugin` kills after a short grace), and a bell flood ends
//!   the plugin's process after a bounded number of wake-ups.
//!
//! Its own test binary: it installs a logger, whose records are part of what the lent
//! tests wait for (never a time).
#![allow(missing_docs)]
#![cfg(target_os = "linux")]

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use attack_api::{Attacker, Probe};
use tomada_host::isolate::{Isolation, Mode, Runner};
use tomada_host::{CallError, Plugin};
use tomada_test_support::cdylib;

/// What the host's `Probe::mark` answers (the fixture looks for it).
const MARK: u64 = 0x7e57_1e47;
/// A bound no test should reach: it only turns a hang into a failure.
const HANG_GUARD: Duration = Duration::from_secs(120);

fn isolation() -> Isolation {
    Isolation::new().runner(Runner::Path(env!("CARGO_BIN_EXE_tomada-runner").into()))
}

fn attacker(isolation: Isolation) -> Plugin<dyn Attacker> {
    tomada_host::load_with::<dyn Attacker>(cdylib("sandbox-attacker"), &Mode::Isolated(isolation)).unwrap()
}

/// Whether process `pid` is gone (or a zombie about to be reaped by init).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Runs `f` on a thread of its own; fails the test if it has not returned within
/// [`HANG_GUARD`] (it is then left behind: the test process ends with the failure).
#[track_caller]
fn returns<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG_GUARD).unwrap_or_else(|_| panic!("{what} never returned: a host thread hangs"))
}

// --- Lent objects --------------------------------------------------------------

/// What the lent-object tests observe, shared with the logger and the probe (the
/// probe is a zero-sized type: a method running after its drop then reads no freed
/// memory, in this test, and records that it ran instead).
struct Watch {
    state: Mutex<Seen>,
    changed: Condvar,
}

#[derive(Default)]
struct Seen {
    /// The probe of the test was dropped (its lending call returned).
    dropped: bool,
    /// The host said a lending call waits for a method running outside the call.
    waited: bool,
    /// `touch` ran: 1 with the probe alive, 2 after its drop.
    touched: u8,
}

static WATCH: Watch =
    Watch { state: Mutex::new(Seen { dropped: false, waited: false, touched: 0 }), changed: Condvar::new() };
/// The lent-object tests share `WATCH` and the logger: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
/// The plugin the probe's `touch` calls (to let the plugin's lending call return).
static PLUGIN: Mutex<Option<Arc<Plugin<dyn Attacker>>>> = Mutex::new(None);

fn update(f: impl FnOnce(&mut Seen)) {
    f(&mut WATCH.state.lock().unwrap_or_else(|p| p.into_inner()));
    WATCH.changed.notify_all();
}

/// Records the host's warnings about lent objects.
struct Logger;

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.level() <= log::Level::Warn && record.args().to_string().contains("lent for one call only") {
            update(|s| s.waited = true);
        }
    }
    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// The host's object lent to the plugin.
struct HostProbe;

impl Drop for HostProbe {
    fn drop(&mut self) {
        update(|s| s.dropped = true);
    }
}

impl Probe for HostProbe {
    fn mark(&self) -> u64 {
        MARK
    }

    /// Called by the plugin after (or as) the lending call returns. Lets that call
    /// return (through the plugin), then waits until either the probe is dropped (its
    /// call returned: what must not happen while this runs) or the host says the
    /// lending call waits for this method; records which.
    fn touch(&self) -> u64 {
        let plugin = PLUGIN.lock().unwrap().clone().expect("a plugin under test");
        assert_eq!(plugin.attack("lent-go", ""), Ok(Ok("go".to_owned())));
        let state = WATCH.state.lock().unwrap_or_else(|p| p.into_inner());
        let (mut state, _) = WATCH
            .changed
            .wait_timeout_while(state, HANG_GUARD, |s| !s.dropped && !s.waited)
            .unwrap_or_else(|p| p.into_inner());
        // (Only the flag is read, never `self`: after a drop, that would be freed.)
        state.touched = if state.dropped { 2 } else { 1 };
        WATCH.changed.notify_all();
        u64::from(state.touched)
    }
}

/// Starts a lent-object test: one at a time, a fresh watch, the logger, the plugin.
fn lent_setup() -> (std::sync::MutexGuard<'static, ()>, Arc<Plugin<dyn Attacker>>) {
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Warn);
    *WATCH.state.lock().unwrap_or_else(|p| p.into_inner()) = Seen::default();
    let plugin = Arc::new(attacker(isolation()));
    *PLUGIN.lock().unwrap() = Some(Arc::clone(&plugin));
    (guard, plugin)
}

/// Waits until `touch` has recorded what it saw; returns it.
fn touched() -> u8 {
    let state = WATCH.state.lock().unwrap_or_else(|p| p.into_inner());
    let (state, _) =
        WATCH.changed.wait_timeout_while(state, HANG_GUARD, |s| s.touched == 0).unwrap_or_else(|p| p.into_inner());
    state.touched
}

fn lent_teardown() {
    PLUGIN.lock().unwrap().take();
}

/// Route 1: the plugin calls the lent probe from a thread of its own (a callback made
/// within no call of the host, served on the host's callback thread), and lets the
/// lending call return while that callback runs.
///
/// Without the fix (`Table::revoke` not waiting), the lending call returns as soon as
/// the plugin answers it, the test drops the probe (as any caller drops what it lent
/// once the call returns), and `touch`, still running on the callback thread, runs on
/// a dropped object: it records 2 and this test fails. With the fix, the lending call
/// waits until `touch` returns (the host warns that it does), and `touch` records 1.
/// No timing: `touch` waits for one of those two events.
#[test]
fn a_lent_object_called_from_a_plugin_thread_after_its_call_never_runs_dropped() {
    let (_one, plugin) = lent_setup();
    let lender = Arc::clone(&plugin);
    let answer = returns("the lending call", move || {
        let probe = HostProbe;
        let answer = lender.lend("outside", &probe);
        drop(probe);
        answer
    });
    assert!(answer.as_ref().is_ok_and(|a| a.is_ok()), "{answer:?}");
    assert_eq!(touched(), 1, "the host ran a method of the lent object after it was dropped");
    assert!(WATCH.state.lock().unwrap().waited, "the lending call said it waited");
    lent_teardown();
}

/// Route 2: a second call in flight calls the probe lent to the first, naming itself
/// as the callback's parent, so the host serves it on the second call's thread while
/// the first call returns. As route 1, without the fix the probe is dropped under
/// `touch` (it records 2); with it, the first call waits for `touch` to return.
#[test]
fn a_lent_object_called_within_another_call_after_its_call_never_runs_dropped() {
    let (_one, plugin) = lent_setup();
    let lender = Arc::clone(&plugin);
    let first = std::thread::spawn(move || {
        let probe = HostProbe;
        let answer = lender.lend("parent", &probe);
        drop(probe);
        answer
    });
    let other = Arc::clone(&plugin);
    let second = returns("the other call", move || other.attack("lent-parent", ""));
    assert!(second.as_ref().is_ok_and(|a| a.is_ok()), "{second:?}");
    let first = returns("the lending call", move || first.join().unwrap());
    assert!(first.as_ref().is_ok_and(|a| a.is_ok()), "{first:?}");
    assert_eq!(touched(), 1, "the host ran a method of the lent object after it was dropped");
    assert!(WATCH.state.lock().unwrap().waited, "the lending call said it waited");
    lent_teardown();
}

/// With lanes, a thread reads the main rings for what the plugin's own threads send
/// there; it stood aside while any blocking call waited on the main rings (such a
/// call reads for itself) — even when that call's thread was serving a callback, and
/// so reading nothing. Here the only lane is held (`hold`), so the next call goes
/// through the main rings; within it the plugin calls back `touch`, which waits for
/// `mark`, called meanwhile from a thread of the plugin's own (through the main
/// rings, within no call). Before the fix nobody read that `mark`: `touch` waited its
/// whole hang guard and the answer said so (`touched 1`).
#[test]
fn a_callback_from_a_plugin_thread_is_read_while_the_main_rings_caller_serves_another() {
    /// Holds its call until `release` is sent; says when it is in.
    struct Holder {
        inside: Mutex<Option<std::sync::mpsc::Sender<()>>>,
        release: Mutex<std::sync::mpsc::Receiver<()>>,
    }
    impl Probe for Holder {
        fn mark(&self) -> u64 {
            0 // (not `MARK`: the plugin's search for the other probe skips it)
        }
        fn touch(&self) -> u64 {
            if let Some(inside) = self.inside.lock().unwrap().take() {
                let _ = inside.send(());
            }
            let _ = self.release.lock().unwrap().recv_timeout(HANG_GUARD);
            7
        }
    }
    /// Counts its `mark`s; `touch` waits for the second (the first is the plugin's
    /// search for it) and says how many it saw.
    #[derive(Default)]
    struct Counted {
        marks: Mutex<u64>,
        changed: Condvar,
    }
    impl Probe for Counted {
        fn mark(&self) -> u64 {
            *self.marks.lock().unwrap() += 1;
            self.changed.notify_all();
            MARK
        }
        fn touch(&self) -> u64 {
            let marks = self.marks.lock().unwrap();
            let (marks, _) = self.changed.wait_timeout_while(marks, HANG_GUARD, |m| *m < 2).unwrap();
            *marks
        }
    }
    let plugin = Arc::new(attacker(isolation().lanes(1)));
    let (inside, is_inside) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel();
    let holder = Arc::new(Holder { inside: Mutex::new(Some(inside)), release: Mutex::new(released) });
    let (p, h) = (Arc::clone(&plugin), Arc::clone(&holder));
    let held = std::thread::spawn(move || p.lend("hold", &*h));
    is_inside.recv_timeout(HANG_GUARD).expect("the holding call reached the host's probe");
    let counted = Counted::default();
    let answer = plugin.lend("within-and-outside", &counted);
    release.send(()).unwrap();
    assert_eq!(answer, Ok(Ok("touched 2".to_owned())), "the plugin thread's callback was read meanwhile");
    assert_eq!(held.join().unwrap(), Ok(Ok("held 7".to_owned())));
}

// --- Waits bounded by a deadline -------------------------------------------------

/// A probe for the calls that only need a lending call in flight.
struct Marker;

impl Probe for Marker {
    fn mark(&self) -> u64 {
        MARK
    }
    fn touch(&self) -> u64 {
        0
    }
}

/// Two calls at once, each waiting in the plugin for the other (so whichever the host
/// sends second, it sends with the first in flight, and posts a nudge for a second
/// thread of the plugin to take it), then the `Plugin` dropped: each returns, and the
/// process is gone.
fn concurrent_calls_and_drop_return(plugin: Plugin<dyn Attacker>) {
    let pid = plugin.process_id().expect("a running process");
    let plugin = Arc::new(plugin);
    let (a, b) = (Arc::clone(&plugin), Arc::clone(&plugin));
    // The first lends a probe and waits until the second has used it.
    let first = std::thread::spawn(move || a.lend("parent", &Marker));
    let second = returns("a concurrent call", move || b.attack("lent-parent", ""));
    let first = returns("the first call", move || first.join().unwrap());
    // Whatever became of them (the plugin may have been ended), they returned.
    let _ = (first, second);
    let plugin = Arc::into_inner(plugin).expect("the calls are done");
    returns("drop(Plugin)", move || drop(plugin));
    assert!(is_dead(pid), "the plugin's process outlived its handle");
}

/// The nudge was an eventfd the plugin shared: filled to 2^64 - 2 (and nobody left
/// to take from it), the host's next nudge (a concurrent call, a dropped async call)
/// blocked in `write(2)` for good, even during `drop(Plugin)` (this test's hang guard
/// trips). Now it is a pipe, and the plugin's descriptor 5 is an opening of its own: it
/// can still fill the pipe and make its opening blocking (the attack goes through),
/// but the host writes through its own opening, non-blocking, where a full pipe means
/// "posted already". Its pool no longer sees nudges (the attack replaced its
/// descriptor 5), so the first call waits for the second until the deadline (the
/// process is ended): every call and the drop return.
#[test]
fn a_plugin_filling_the_nudge_blocks_no_concurrent_call() {
    // (No lanes: the concurrent calls go through the main rings and the nudge.)
    let plugin = attacker(isolation().deadline(Duration::from_secs(3)).lanes(0));
    let filled = plugin.attack("fill-nudge", "").unwrap();
    assert!(filled.as_ref().is_ok_and(|r| r.contains("fd 5: filled")), "{filled:?}");
    concurrent_calls_and_drop_return(plugin);
}

/// The bells were eventfds both processes held: the plugin could fill the one the
/// host rings and clear its `O_NONBLOCK` (shared with the host: one open file
/// description), and the host's next ring blocked for good. Now each bell is a pipe,
/// and each side holds only its own end: the plugin fills the ends it may write
/// (which only floods the host's bells, see below) and cannot write the others;
/// nothing the host does blocks.
#[test]
fn a_plugin_filling_the_bells_blocks_no_host_thread() {
    let plugin = attacker(isolation().lanes(0));
    let filled = plugin.attack("fill-bells", "");
    // (It may already fail: a full bell of the host's is a flood.)
    if let Ok(report) = &filled {
        let report = format!("{report:?}");
        assert!(report.contains("fd 9: Bad file descriptor"), "{report}");
        assert!(report.contains("fd 10: Bad file descriptor"), "{report}");
    }
    concurrent_calls_and_drop_return(plugin);
}

/// A plugin that claims it read nothing of the host's ring: the next call waits for
/// room up to its deadline, then fails with `TimedOut`, and the process is ended.
#[test]
fn a_ring_claimed_full_fails_the_next_call_at_its_deadline() {
    // The main rings' (no lanes), then a lane's (descriptor 11: lane 0's memory, the
    // lane a call from one thread takes).
    ring_claimed_full(isolation().lanes(0), "6");
    ring_claimed_full(isolation().lanes(1), "11");
}

fn ring_claimed_full(isolation: Isolation, fd: &str) {
    let plugin = attacker(isolation.deadline(Duration::from_secs(2)));
    let pid = plugin.process_id().unwrap();
    assert!(plugin.attack("claim-full", fd).unwrap().is_ok());
    let plugin = Arc::new(plugin);
    let p = Arc::clone(&plugin);
    let next = returns("the next call", move || p.attack("whoami", ""));
    assert!(matches!(next, Err(CallError::TimedOut { .. })), "{next:?}");
    assert!(is_dead(pid), "the process was ended");
}

/// A plugin that, before its calls first overlap, puts other files at the descriptors
/// of its dormant lanes (11 and up: each lane's memory, then its bell), or closes
/// them. When its calls then overlap, its lanes cannot start, or fail as it made them
/// fail; the host's calls never wait on a lane the plugin broke past their
/// deadline, the host stays up, and the next calls are answered (by the same process,
/// or by a new one if the plugin's broke).
#[test]
fn lanes_taken_away_before_they_start_cost_the_host_nothing() {
    for how in ["null", "close"] {
        let plugin = attacker(isolation().deadline(Duration::from_secs(10)));
        let pid = plugin.process_id().unwrap();
        assert!(plugin.attack("replace-lanes", how).unwrap().is_ok());
        let plugin = Arc::new(plugin);
        two_calls_meet(&plugin, how);
        // Calls from several threads at once, which would take the lanes.
        let answers = calls_from_threads(&plugin);
        let failed: Vec<_> = answers.iter().filter(|a| !matches!(a, Ok(Ok(_)))).collect();
        assert!(failed.is_empty(), "{how}: {failed:?}");
        assert_eq!(plugin.process_id(), Some(pid), "{how}: the process served every call");
    }
}

/// Two calls that wait for each other inside the plugin (its first meeting): the
/// second is sent while the first is in flight, and its end asks the plugin's process
/// to start its lanes. Both must meet.
fn two_calls_meet(plugin: &Arc<Plugin<dyn Attacker>>, what: &str) {
    let p = Arc::clone(plugin);
    let met = returns("two calls that meet", move || {
        std::thread::scope(|s| {
            let first = s.spawn(|| p.attack("meet", "2"));
            let second = p.attack("meet", "2");
            (first.join().unwrap(), second)
        })
    });
    assert!(matches!(met, (Ok(Ok(_)), Ok(Ok(_)))), "{what}: {met:?}");
}

/// 50 calls from each of 4 threads at once (they overlap: the first answered with
/// another in flight asks the plugin's process to start its lanes); their answers.
fn calls_from_threads(plugin: &Arc<Plugin<dyn Attacker>>) -> Vec<Result<Result<String, String>, CallError>> {
    let p = Arc::clone(plugin);
    returns("calls from several threads", move || {
        std::thread::scope(|s| {
            let threads: Vec<_> =
                (0..4).map(|_| s.spawn(|| (0..50).map(|_| p.attack("whoami", "")).collect::<Vec<_>>())).collect();
            threads.into_iter().flat_map(|t| t.join().unwrap()).collect::<Vec<_>>()
        })
    })
}

/// The same, with lane 0 left alone but no room for its thread (`max_processes`) and
/// the later lanes' descriptors closed: the runner leaves every lane it does not serve
/// as it is (closing them again aborted it, and could close another file of the
/// plugin's), and serves every call on the main rings. (Calls from several threads,
/// not calls that wait for one another: at so low a limit even the plugin's pool
/// thread may not start, and the main thread then serves the calls one by one.)
#[test]
fn lanes_closed_behind_one_that_cannot_start_cost_the_host_nothing() {
    use tomada_host::isolate::Sandbox;
    let sandbox = Sandbox::strict().max_processes(3).run_as(64_996, 64_996);
    let plugin = attacker(isolation().sandbox(sandbox).deadline(Duration::from_secs(10)));
    let pid = plugin.process_id().unwrap();
    assert!(plugin.attack("replace-lanes", "close-from:13").unwrap().is_ok());
    let plugin = Arc::new(plugin);
    let answers = calls_from_threads(&plugin);
    let failed: Vec<_> = answers.iter().filter(|a| !matches!(a, Ok(Ok(_)))).collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(plugin.process_id(), Some(pid), "the process served every call");
}

/// A call made within a callback (for the plugin's thread that waits there for the
/// callback's answer) and another call sent just after it, from another host thread,
/// while that plugin thread sleeps: both can come in one read. The plugin's thread
/// serves the first, and the second, behind it, is another thread's to read: it was
/// left in the first thread's buffer, with no thread nudged (it found that thread
/// asleep), and two calls that wait for each other waited for good (5 runs of 5 at
/// rounds 2 to 36). A review's reproduction.
#[test]
fn a_call_read_behind_a_nested_call_is_served_meanwhile() {
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicU32, Ordering};
    /// The lent object: its `touch` (the plugin's callback) meets, within it, the
    /// other thread's call, inside the plugin.
    struct Meets {
        plugin: Mutex<Option<Arc<Plugin<dyn Attacker>>>>,
        round: AtomicU32,
        barrier: Barrier,
    }
    impl Probe for Meets {
        fn mark(&self) -> u64 {
            0
        }
        fn touch(&self) -> u64 {
            let p = self.plugin.lock().unwrap().clone().unwrap();
            self.barrier.wait();
            u64::from(matches!(p.attack("meet", &(2 * self.round.load(Ordering::SeqCst)).to_string()), Ok(Ok(_))))
        }
    }
    let plugin = Arc::new(attacker(isolation().lanes(0).deadline(Duration::from_secs(8))));
    let pid = plugin.process_id().unwrap();
    let probe = Arc::new(Meets {
        plugin: Mutex::new(Some(Arc::clone(&plugin))),
        round: AtomicU32::new(0),
        barrier: Barrier::new(2),
    });
    // (Guarded: a lending call that returned without its callback would leave the
    // other thread at the barrier.)
    let rounds = Arc::clone(&probe);
    returns("200 rounds of a nested call and another", move || {
        for round in 1..=200u32 {
            rounds.round.store(round, Ordering::SeqCst);
            let (p, b) = (Arc::clone(&plugin), Arc::clone(&rounds));
            let other = std::thread::spawn(move || {
                b.barrier.wait();
                p.attack("meet", &(2 * round).to_string())
            });
            let lent = plugin.lend("hold", &*rounds);
            let other = other.join().unwrap();
            assert!(matches!(other, Ok(Ok(_))), "round {round}: the other call: {other:?}");
            assert_eq!(lent, Ok(Ok("held 1".to_owned())), "round {round}: the lending call");
            assert_eq!(plugin.process_id(), Some(pid), "round {round}: no call cost the process");
        }
    });
    // (The object holds the plugin: let go, or neither is ever dropped.)
    probe.plugin.lock().unwrap().take();
}

/// The same, with the `Plugin` dropped instead: dropping asks the plugin's process to
/// drop its instance, and that request waited for room up to the call deadline (30 s
/// by default; here ten minutes, so that without the fix the hang guard trips). Now it
/// waits a short grace, then kills the process.
#[test]
fn drop_kills_a_plugin_that_takes_nothing_without_waiting_for_the_deadline() {
    let plugin = attacker(isolation().deadline(Duration::from_secs(600)));
    let pid = plugin.process_id().unwrap();
    assert!(plugin.attack("claim-full", "").unwrap().is_ok());
    returns("drop(Plugin)", move || drop(plugin));
    assert!(is_dead(pid), "the plugin's process outlived its handle");
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `getrusage` writes one `rusage` into a zeroed local.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    // SAFETY: zeroed, then written by the call.
    let usage = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A plugin that rings the host's bell without end and sends nothing, while the host
/// waits for its answer. Each ring woke the waiting host thread for nothing: it burnt
/// as much CPU as the plugin, until the deadline. Now the host coalesces the wake-ups
/// (once a millisecond at most after two for nothing) and ends a peer that wakes it
/// 64 times in a row without sending anything: the call fails with that reason, long
/// before its deadline (two minutes here; without the fix, the call times out, which
/// this test refuses), having cost the waiting thread a few milliseconds of CPU. The
/// CPU bound below is generous (a second): only an unbounded flood reaches it.
#[test]
fn a_bell_flood_ends_the_plugin_and_costs_the_host_little() {
    // The main rings' bell (no lanes), then a lane's (descriptor 12: lane 0's bell, a
    // socketpair, where a call from one thread waits).
    bell_flood(isolation().lanes(0), "7");
    bell_flood(isolation().lanes(1), "12");
}

fn bell_flood(isolation: Isolation, fd: &'static str) {
    let plugin = attacker(isolation.deadline(HANG_GUARD));
    let pid = plugin.process_id().unwrap();
    let (result, cpu) = returns("the flooded call", move || {
        let before = thread_cpu();
        let result = plugin.attack("bell-flood", fd);
        (result, thread_cpu() - before)
    });
    assert!(
        matches!(&result, Err(CallError::Channel { message }) if message.contains("without sending anything")),
        "{result:?}"
    );
    assert!(cpu < Duration::from_secs(1), "the waiting thread burnt {cpu:?} of CPU");
    assert!(is_dead(pid), "the flooding process was ended");
}
