//! Unload that never crashes: before an in-process plugin's library is closed,
//! tomada looks for what would still run its code once it is unmapped, and if it
//! finds any, keeps the library mapped and reports why instead of crashing later.
//!
//! Looked for (Linux, glibc):
//! - **signal handlers** (`sigaction`) that are functions of the library;
//! - **threads still in the library**: any other thread of the process, started
//!   since the library was loaded (by the start tick `/proc` gives, and in the few
//!   ticks around the load, by thread id against the thread that loaded it; one
//!   started before runs its code through calls,
//!   and a library is never closed during a call; or through a signal handler or a
//!   key destructor, below), whose current instruction,
//!   or any word of its stack from its stack pointer up (the return addresses of the
//!   frames it will return into), points into the library's code. Threads tomada
//!   started for itself (output readers, the main rings' reader, callbacks, the
//!   spawner) are not looked at: they run a plugin's code only within calls into it.
//!   Read from `/proc/self/task/<tid>/syscall` (stack and instruction pointers of a
//!   thread blocked in the kernel) and `/proc/self/mem`. A thread running at that very
//!   moment, outside the kernel, shows neither and is looked at again for up to ~25 ms;
//!   one that never blocks meanwhile is not seen (rare: a plugin's threads mostly wait). A stale word
//!   on a stack can keep a library mapped that could have gone: the error is always
//!   on the side of keeping it. What `/proc` cannot tell (out of descriptors, say)
//!   keeps it too ([`Hazard::NotLookedAt`]). Not seen: a thread older than the library
//!   still running one of its signal handlers that was replaced before the unload
//!   (the handler, while installed, is a hazard of its own);
//! - **`pthread_key_create` destructors** in the library that a thread holds a value
//!   for (they run at the exit of such a thread), read from glibc's key table after
//!   checking its layout against the description glibc publishes for debuggers
//!   (`_thread_db___pthread_keys`); where it does not match, keys are not checked.
//!   Whether a thread holds a value is read from glibc's list of threads the way
//!   `libthread_db` reads it (see `held_keys`); where it cannot be, every such key is
//!   a hazard. A live thread with the key's sequence number and no value may be in
//!   that destructor right now (glibc clears the value just before it calls it, and
//!   the destructor may block): its stack is looked at, whatever its age, and if it
//!   is never seen blocked it is a hazard. (A plugin's `std` makes such a key the first time it registers a
//!   thread-local destructor, and gives a value to each thread it does that on: the
//!   threads the plugin starts, and a host thread that asked it to start one. Counting
//!   every key as a hazard kept every plugin that ever started a thread mapped for good.)
//!
//! "The library's code" is its executable `PT_LOAD` segments, read from its own
//! program headers (in the sealed copy, or a file that cannot change: the bytes the
//! loader mapped) and moved to where the link map says the loader put it (`dlinfo`),
//! so an unload costs the same however many other libraries are loaded. Only
//! without glibc's `dlinfo`, or for a file that could have changed since it was
//! loaded, is `/proc/self/maps` read for it, as it was for every unload before (its
//! thousands of lines with a thousand plugins loaded made unloading them all
//! quadratic). The end of the mapping a thread's stack pointer lies in (where its
//! scan stops) is asked of the kernel for that one address (`PROCMAP_QUERY`, Linux
//! 6.11); an older kernel's `/proc/self/maps` is read at most once per unload, and
//! only if a thread is looked at.
//!
//! Not looked for, because glibc already handles them: thread-local destructors
//! (`__cxa_thread_atexit_impl`: glibc keeps the library mapped until every thread that
//! registered one has exited) and `atexit`/`__cxa_atexit` handlers of the library
//! (run by `dlclose` itself, before unmapping). But a library glibc keeps so after
//! tomada closed its last handle is found (glibc's index of objects still holds it
//! after `dlclose`), kept on the list with its name, and reported
//! ([`Hazard::ThreadLocalDestructor`]): a plugin's `std` registers such destructors
//! on every thread that called `std::thread::spawn` in it (the spawn hooks it
//! reads), so a plugin that started a thread from a call on the host's main thread
//! stayed mapped, its sealed copy open, unreported, for the life of the process.
//! glibc unloads such a library only at a `dlclose` after those threads have exited:
//! every unload looks whether one has (one look at glibc's index each), and
//! [`unload_pinned_libraries`] makes one (`dlopen(RTLD_NOLOAD)` of it and `dlclose`).
//!
//! A library kept mapped (its sealed copy stays open too) is an [`UnloadReport`],
//! listed by [`pinned_libraries`] and logged as a `tracing` event (target
//! `tomada::audit`, decision `kept mapped`). It is **looked at again** at every later
//! unload of any plugin (in the same look as the library unloaded then; skipped while
//! a thread found in it last time is alive, which costs one `tgkill` with no signal) and by
//! [`unload_pinned_libraries`] (always), with the same checks, and unloaded as soon as nothing
//! is found (its thread ended, the host thread holding its key's value ended;
//! decision `unloaded`). A library kept for a **signal handler** of its own is kept
//! for good: once the handler is replaced, an invocation of it still running on a
//! thread older than the library could not be seen. Looking again differs, since no
//! handle holds it any more: the thread doing the look is looked at too, if it started
//! since (it may be one of the library's own threads, unloading another plugin), and
//! a thread never seen blocked, or what `/proc` cannot tell, is a hazard rather than
//! waited for or passed over. Elsewhere than Linux nothing is looked for and
//! libraries are closed as before.

use std::path::PathBuf;
use std::sync::Mutex;

/// What would run a library's code after it is unmapped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hazard {
    /// A thread (kernel thread id) is executing in the library, or will return into it.
    Thread {
        /// The thread's id (`gettid`).
        tid: u32,
    },
    /// A signal's handler is a function of the library.
    SignalHandler {
        /// The signal number.
        signal: i32,
    },
    /// A `pthread_key_create` destructor is a function of the library.
    KeyDestructor {
        /// The key.
        key: u32,
    },
    /// The process's threads could not be looked at (`/proc` could not be read: out
    /// of descriptors, say): kept, on the side of not crashing, until a later look.
    NotLookedAt {
        /// What could not be read.
        what: String,
    },
    /// glibc kept the library loaded after tomada closed its last handle: a
    /// thread-local destructor of the library (`__cxa_thread_atexit_impl`, which a
    /// plugin's `std` calls for its `thread_local!`s with a destructor, including
    /// those `std::thread::spawn` reads on the calling thread) is registered on a
    /// thread that has not exited, and glibc runs it at that thread's exit. glibc
    /// does not say which thread: any thread that called into the plugin and still
    /// lives (the main thread, a long-lived worker). It unloads the library at the
    /// first `dlclose` after every such thread has exited (of another plugin, or
    /// [`unload_pinned_libraries`]'s). (Anything else glibc keeps a closed library
    /// for, such as a plugin that opened itself again, is reported as this too.)
    ThreadLocalDestructor,
}

impl std::fmt::Display for Hazard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hazard::Thread { tid } => write!(f, "thread {tid} is still running its code"),
            Hazard::SignalHandler { signal } => write!(f, "the handler of signal {signal} is one of its functions"),
            Hazard::KeyDestructor { key } => write!(f, "the destructor of pthread key {key} is one of its functions"),
            Hazard::NotLookedAt { what } => write!(f, "its threads could not be looked at ({what})"),
            Hazard::ThreadLocalDestructor => write!(
                f,
                "glibc keeps it after dlclose for a thread-local destructor registered on a thread that \
                 has not exited (unloaded once that thread ends; a host thread that called into the \
                 plugin, e.g. to start a thread, registers them)"
            ),
        }
    }
}

/// A plugin library kept mapped when it was to be unloaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnloadReport {
    /// The plugin's file.
    pub path: PathBuf,
    /// Everything found that would run its code after unmapping: at the unload that
    /// kept it, then as found by the last look at it again.
    pub hazards: Vec<Hazard>,
}

/// A library kept mapped, with what it takes to look at it again and to unload it.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
struct Kept {
    /// Tells it apart while it is looked at outside the lock.
    id: u64,
    report: UnloadReport,
    /// Its executable code (see [`Subject`]).
    code: Vec<(usize, usize)>,
    /// Found with a signal handler of its own: kept for good, never looked at again
    /// (a handler replaced since may still be running on a thread older than the
    /// library, which no look sees).
    for_good: bool,
    library: crate::library::Library,
}

static PINNED: Mutex<Vec<Kept>> = Mutex::new(Vec::new());

/// The threads tomada started for itself (reading a child's output, the main rings,
/// callbacks, file watches...), while they run: never a hazard. They run a plugin's
/// code only within calls into it, and a call holds its library (as a thread older
/// than the library does); but a new thread's stack may be one glibc kept from a
/// thread that ended, with that thread's words still in the slots a frame leaves
/// unwritten, some of them a plugin's addresses, which kept libraries mapped for
/// nothing (seen: an output reader's, started during another test's spawn, pinned a
/// library whose every handle was gone).
#[cfg(target_os = "linux")]
static OWN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// While it lives, the thread that made it is one of tomada's own (see [`OWN`]):
/// made first thing in each thread tomada starts, dropped as it ends.
pub(crate) struct OwnThread(#[cfg_attr(not(target_os = "linux"), allow(dead_code))] u32);

/// Marks the calling thread as one of tomada's own until the guard drops.
pub(crate) fn own_thread() -> OwnThread {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `gettid` has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        OWN.lock().unwrap_or_else(|p| p.into_inner()).push(tid);
        OwnThread(tid)
    }
    #[cfg(not(target_os = "linux"))]
    OwnThread(0)
}

impl Drop for OwnThread {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        OWN.lock().unwrap_or_else(|p| p.into_inner()).retain(|&tid| tid != self.0);
    }
}

/// Every plugin library this process keeps mapped instead of unloading it, and why
/// (see the [module documentation](self)). A library leaves the list when a later
/// look finds nothing left that would run its code, and it is unloaded then (see
/// [`unload_pinned_libraries`]).
pub fn pinned_libraries() -> Vec<UnloadReport> {
    PINNED.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|kept| kept.report.clone()).collect()
}

/// Looks again at every library kept mapped (see [`pinned_libraries`]) and unloads
/// each that nothing would run any more — its threads ended, no live thread holding
/// a value of its `pthread` key, no live thread with a thread-local destructor of it
/// (glibc unloads it then, at this call's `dlclose` of it) — with the same checks as
/// any unload; returns the paths of those unloaded. Every unload of a plugin does this too, so a host
/// that keeps loading and unloading plugins needs not call it; one that unloads
/// rarely can, when it knows a plugin's leftovers are gone. A library kept for a
/// signal handler of its own is kept for good: one replaced since may still be
/// running on an old thread, where no look sees it.
///
/// ```
/// // Nothing was kept mapped in this process, so nothing is unloaded.
/// assert!(tomada_host::pinned_libraries().is_empty());
/// assert!(tomada_host::unload_pinned_libraries().is_empty());
/// ```
pub fn unload_pinned_libraries() -> Vec<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        let (_, unloaded) = look_again(None, true);
        unloaded
    }
    #[cfg(not(target_os = "linux"))]
    Vec::new()
}

/// Looks for the hazards of `now`, the library being unloaded (if any: see
/// [`Subject`]), and, in the same look, of the libraries kept mapped before; unloads
/// the kept ones found free (after the look, outside every lock: their destructors
/// may unload plugins) and records what was found for the others. Returns the
/// hazards of `now` and the paths of the kept libraries unloaded.
///
/// With `every` false (the look of each unload), a kept library one of whose threads
/// found last time is still alive is left out: it is kept on (a thread the library
/// started runs its code until it ends), and each unload costs one `tgkill(tid, 0)` per such
/// library rather than a look at its threads' stacks; so a library kept for a
/// long-lived thread that has left its code is unloaded by
/// [`unload_pinned_libraries`] (`every`), or once that thread ends.
#[cfg(target_os = "linux")]
pub(crate) fn look_again(now: Option<Subject<'_>>, every: bool) -> (Vec<Hazard>, Vec<PathBuf>) {
    // (id, code, load time) of each library kept before and looked at now.
    type Looked = (u64, Vec<(usize, usize)>, Since);
    // SAFETY: `getpid` has no preconditions.
    let pid = unsafe { libc::getpid() };
    // Whether thread `tid` of this process lives: signal 0 sends nothing, only checks
    // (one system call, no `/proc` path to walk).
    // SAFETY: `tgkill` with signal 0 delivers no signal.
    let alive = |tid: u32| unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, 0) } == 0;
    let mut unloaded = let_go(every);
    let kept: Vec<Looked> = {
        let pinned = PINNED.lock().unwrap_or_else(|p| p.into_inner());
        pinned
            .iter()
            .filter(|k| {
                !k.for_good
                    && !k.library.closed()
                    && (every || !k.report.hazards.iter().any(|h| matches!(*h, Hazard::Thread { tid } if alive(tid))))
            })
            .map(|k| (k.id, k.code.clone(), k.library.opened()))
            .collect()
    };
    if kept.is_empty() && now.is_none() {
        return (Vec::new(), unloaded);
    }
    let subjects: Vec<Subject<'_>> = now
        .into_iter()
        .chain(kept.iter().map(|(_, code, since)| Subject { code, since: *since, kept: true }))
        .collect();
    // This thread is looked at from here up (see `hazards`).
    let top = 0usize;
    let mut found = hazards(&subjects, std::hint::black_box(&raw const top) as usize);
    let mine = if now.is_some() { found.remove(0) } else { Vec::new() };
    let mut free = Vec::new();
    {
        let mut pinned = PINNED.lock().unwrap_or_else(|p| p.into_inner());
        for ((id, ..), hazards) in kept.iter().zip(found) {
            // (Gone already: another unload found it free and unloaded it meanwhile.)
            let Some(at) = pinned.iter().position(|k| k.id == *id) else { continue };
            if hazards.is_empty() {
                free.push(pinned.remove(at));
            } else {
                pinned[at].for_good = hazards.iter().any(|h| matches!(h, Hazard::SignalHandler { .. }));
                pinned[at].report.hazards = hazards;
            }
        }
    }
    for kept in free {
        // (Kept by the loader all the same, for a thread-local destructor: recorded
        // again, closed, by `close`.)
        if kept.library.close() {
            tracing::info!(
                target: "tomada::audit",
                file = %kept.report.path.display(),
                decision = "unloaded",
                "plugin library kept mapped before is unloaded: nothing would run its code any more"
            );
            unloaded.push(kept.report.path);
        }
    }
    (mine, unloaded)
}

/// The libraries glibc kept after their last `dlclose` (see
/// [`Hazard::ThreadLocalDestructor`]) that it has let go of since: each leaves the
/// list and its name is let go; returns their paths. With `nudge`, glibc is first
/// asked to look at them again (see `crate::library::nudge`: what its next `dlclose`
/// of any library would do), outside every lock (it may run their finalisers, which
/// may unload plugins); without, only those a `dlclose` since has unloaded go (one
/// look at glibc's index of objects each).
#[cfg(target_os = "linux")]
fn let_go(nudge: bool) -> Vec<PathBuf> {
    if nudge {
        let names: Vec<std::ffi::CString> = {
            let pinned = PINNED.lock().unwrap_or_else(|p| p.into_inner());
            pinned.iter().filter_map(|k| k.library.kept_name()).collect()
        };
        for name in &names {
            crate::library::nudge(name);
        }
    }
    let gone: Vec<Kept> = {
        let mut pinned = PINNED.lock().unwrap_or_else(|p| p.into_inner());
        pinned.extract_if(.., |k| k.library.closed() && k.library.let_go()).collect()
    };
    gone.into_iter()
        .map(|kept| {
            tracing::info!(
                target: "tomada::audit",
                file = %kept.report.path.display(),
                decision = "unloaded",
                "plugin library glibc kept for a thread-local destructor is unloaded: that thread has exited"
            );
            // Its name is let go as it drops (the loader has let go of it).
            kept.report.path
        })
        .collect()
}

/// Records a library kept mapped, with its code and load time (to look at it again)
/// and the library itself, still open.
#[cfg(target_os = "linux")]
pub(crate) fn pinned(report: UnloadReport, code: Vec<(usize, usize)>, library: crate::library::Library) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static IDS: AtomicU64 = AtomicU64::new(0);
    let reasons: Vec<String> = report.hazards.iter().map(ToString::to_string).collect();
    tracing::warn!(
        target: "tomada::audit",
        file = %report.path.display(),
        decision = "kept mapped",
        reason = %reasons.join("; "),
        "plugin library kept mapped: unloading it would crash the host later"
    );
    let id = IDS.fetch_add(1, Ordering::Relaxed);
    let for_good = report.hazards.iter().any(|h| matches!(h, Hazard::SignalHandler { .. }));
    PINNED.lock().unwrap_or_else(|p| p.into_inner()).push(Kept { id, report, code, for_good, library });
}

/// When a library was loaded, as a thread's start is compared with it (see
/// [`threads`]): the tick of the clock of threads' start times
/// (`/proc/<pid>/task/<tid>/stat`'s `starttime`: clock ticks of `CLOCK_BOOTTIME`),
/// one tick early (the side of looking at more threads), and the thread that loaded
/// it, which tells the threads started in the same few ticks apart (see
/// [`Since::older`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) struct Since {
    /// The tick, one early.
    pub(crate) tick: u64,
    /// The thread that loaded it (`gettid`; 0, none known).
    pub(crate) loader: u32,
}

impl Since {
    /// Whether thread `tid`, started at tick `started`, started before the library
    /// was loaded. Ticks are 10 ms (at the usual 100 a second) and the tick is one
    /// early, so by ticks alone every thread started up to 20 ms before the load is
    /// "since": a test binary's tests, run beside each other, start threads that
    /// often, and one of those, on a stack glibc reused with words of a plugin once
    /// mapped at the same addresses, kept a library mapped that nothing used (seen
    /// in CI: the thread of another test, started in the same tick, kept an object
    /// test's library). In those ticks the kernel's order of thread ids tells: ids
    /// are given in increasing order, so the loader, and a thread with a lower id
    /// than the loader's, started before the load.
    ///
    /// `tie` is `(the loader's start tick, pid_max)`, where they could be read and
    /// `/proc` numbers threads as `gettid` does (see [`TieBreak::tie`]); `None`, no
    /// tie-break. Trusted only where no wrap of the ids can come between: the loader
    /// started in those few ticks (4 ticks, 40 ms, from its start to the end of the
    /// other thread's tick), `pid_max` is at least the kernel's smallest default
    /// (32,768), and the other id is less than `pid_max / 2 - 300` below the
    /// loader's. Ids after a wrap start again at 300, so a wrap between the two
    /// would take at least `pid_max / 2` (16,384) ids given out in those 40 ms: over
    /// 400,000 threads or processes a second. (Not covered: ids chosen by a
    /// checkpoint-restore tool, `clone3`'s `set_tid` or `ns_last_pid`, which need
    /// `CAP_CHECKPOINT_RESTORE`.)
    #[cfg(target_os = "linux")]
    pub(crate) fn older(&self, tid: u32, started: u64, tie: Option<(u64, u32)>) -> bool {
        if started < self.tick {
            return true;
        }
        // The tick of the load is `self.tick + 1`; a start after the next one is
        // after the load, whatever the id says (a lower one is a wrap).
        if started > self.tick + 2 || tid > self.loader || self.loader == 0 {
            return false;
        }
        let Some((loader_started, pid_max)) = tie else { return false };
        pid_max >= 32_768
            && (self.tick.saturating_sub(1)..=self.tick + 1).contains(&loader_started)
            && self.loader - tid < pid_max / 2 - 300
    }
}

/// Now, as a library's load time (see [`Since`]), loaded by the calling thread.
#[cfg(target_os = "linux")]
pub(crate) fn now() -> Since {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `clock_gettime` writes the time into `ts`, a valid `timespec`.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    // SAFETY: `sysconf` has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100).max(1);
    let ticks = (ts.tv_sec as u64).saturating_mul(hz) + (ts.tv_nsec as u64).saturating_mul(hz) / 1_000_000_000;
    // SAFETY: `gettid` has no preconditions.
    let loader = unsafe { libc::gettid() } as u32;
    Since { tick: ticks.saturating_sub(1), loader }
}

/// A thread's start, in ticks (`starttime`, the 22nd field of its `stat`, the 20th
/// after the command's `)`).
#[cfg(target_os = "linux")]
fn start_tick(tid: u32) -> Option<u64> {
    let stat = task_file(tid, "stat").ok()?;
    stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(19)?.parse::<u64>().ok())
}

/// A library whose hazards are looked for (see [`hazards`]).
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    /// Its executable code (see [`code`]).
    pub(crate) code: &'a [(usize, usize)],
    /// When it was loaded ([`now`]): only threads started since then are looked at
    /// (see [`threads`]), but for a key destructor one may be running.
    pub(crate) since: Since,
    /// Kept mapped at an earlier unload, and looked at again: no handle of it is
    /// left, so nothing holds it while a call runs, and the calling thread is looked
    /// at too, if it started since (a thread of the library, or one it started, may
    /// be the one unloading another plugin); a thread never seen blocked counts as a
    /// hazard rather than being waited for, and so does what cannot be read.
    pub(crate) kept: bool,
}

/// For each of `subjects`, what would run its code after it is unmapped (empty: safe
/// to unload), in one look at the process (signal handlers, `pthread` keys, threads)
/// for all of them.
#[cfg(target_os = "linux")]
///
/// This thread's own stack (looked at for a library kept before, see [`threads`]) is
/// read from `from` up: an address in the frame of the caller's that started the
/// look. The look's own frames, below it, hold words it read of other threads'
/// stacks and of glibc's tables, some of them the subjects' addresses.
pub(crate) fn hazards(subjects: &[Subject<'_>], from: usize) -> Vec<Vec<Hazard>> {
    let mut found = vec![Vec::new(); subjects.len()];
    let ranges = Ranges::new(subjects);
    if ranges.0.is_empty() {
        return found;
    }
    let which = |addr: usize| ranges.which(addr);
    signals(&which, &mut found);
    let ending = keys(&which, &mut found);
    threads(&which, subjects, &ending, from, &mut found);
    found
}

/// Every subject's code ranges, sorted by start, with the furthest end reached by
/// any range up to each: libraries' code never overlaps, so an address is looked up
/// by a binary search and at most one comparison more (a malformed file's
/// overlapping segments cost a longer walk back, never a range missed).
#[cfg(target_os = "linux")]
struct Ranges(Vec<(usize, usize, usize, usize)>);

#[cfg(target_os = "linux")]
impl Ranges {
    fn new(subjects: &[Subject<'_>]) -> Ranges {
        let mut all: Vec<(usize, usize, usize, usize)> = subjects
            .iter()
            .enumerate()
            .flat_map(|(i, s)| {
                s.code.iter().filter(|(start, end)| start < end).map(move |&(start, end)| (start, end, i, 0))
            })
            .collect();
        all.sort_unstable();
        let mut reach = 0;
        for range in &mut all {
            reach = reach.max(range.1);
            range.3 = reach;
        }
        Ranges(all)
    }

    /// The subject whose code holds `addr`, if one does.
    fn which(&self, addr: usize) -> Option<usize> {
        let after = self.0.partition_point(|&(start, ..)| start <= addr);
        self.0[..after]
            .iter()
            .rev()
            .take_while(|&&(.., reach)| reach > addr)
            .find(|&&(start, end, ..)| (start..end).contains(&addr))
            .map(|&(_, _, i, _)| i)
    }
}

/// Where the loader put a library, from its link map entry.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placed {
    /// The entry itself (`struct link_map *`): compared, never read after `dlclose`.
    pub(crate) map: usize,
    /// `l_addr`: the difference between the addresses in its file and in memory.
    pub(crate) base: usize,
    /// `l_ld`: the address of its dynamic section, inside the library.
    pub(crate) dynamic: usize,
}

/// Where the loader put the library of `handle` (`dlinfo`, which reads the handle:
/// no walk of the loaded libraries, no system call).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn placed(handle: *mut std::ffi::c_void) -> Option<Placed> {
    /// The head of `struct link_map` as <link.h> publishes it (glibc's own is
    /// larger; only these fields are read).
    #[repr(C)]
    struct LinkMap {
        l_addr: usize,
        l_name: *const std::ffi::c_char,
        l_ld: usize,
    }
    let mut map: *const LinkMap = std::ptr::null();
    // SAFETY: `handle` is a live `dlopen` handle; `RTLD_DI_LINKMAP` writes a
    // `struct link_map *` into `map`, which outlives the call.
    if unsafe { libc::dlinfo(handle, libc::RTLD_DI_LINKMAP, (&raw mut map).cast()) } != 0 || map.is_null() {
        return None;
    }
    // SAFETY: the loader's link map entry of a library that stays loaded while
    // `handle` is open; it starts with the published fields.
    let (base, dynamic) = unsafe { ((*map).l_addr, (*map).l_ld) };
    Some(Placed { map: map as usize, base, dynamic })
}

/// Where the loader put the library of `handle` (unknown without glibc's `dlinfo`:
/// [`code`] then reads `/proc/self/maps`).
#[cfg(all(target_os = "linux", not(target_env = "gnu")))]
pub(crate) fn placed(_handle: *mut std::ffi::c_void) -> Option<Placed> {
    None
}

/// The address ranges of the executable code of the library loaded from `file` at
/// `base` (see [`base`]): its executable `PT_LOAD` segments, read from the file's
/// program headers, moved by `base` and widened to whole pages, as the loader maps
/// them: those the file's inspection found ([`crate::file::PluginFile::code`]: the
/// structural check reads the program headers anyway), else read again from the
/// library's own headers (two `pread`s), however many other libraries are loaded.
/// Only from a file whose bytes cannot have changed since the loader read them (the
/// sealed copy, an immutable or fs-verity file); otherwise, or without `base`, the
/// executable mappings of that file in `/proc/self/maps`, which lists every mapping
/// of the process (thousands of lines with many plugins loaded).
#[cfg(target_os = "linux")]
pub(crate) fn code(file: &crate::file::PluginFile, base: Option<usize>) -> Vec<(usize, usize)> {
    let from_headers = base.filter(|_| file.unchanging()).and_then(|base| match file.code() {
        Some(segments) => place(segments, base),
        None => self::segments(file, base),
    });
    match from_headers {
        Some(code) => code,
        None => mapped_code(file.identity.0, file.identity.1),
    }
}

/// Executable segments (`p_vaddr`, `p_memsz`) of a library loaded at `base`, in
/// whole pages as the loader maps them; `None` if one lies outside the address space.
#[cfg(target_os = "linux")]
pub(crate) fn place(segments: &[(u64, u64)], base: usize) -> Option<Vec<(usize, usize)>> {
    // SAFETY: `sysconf` has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok().filter(|p| p.is_power_of_two())?;
    segments
        .iter()
        .map(|&(vaddr, memsz)| {
            let start = base.checked_add(usize::try_from(vaddr).ok()?)?;
            let end = start.checked_add(usize::try_from(memsz).ok()?)?.checked_next_multiple_of(page)?;
            Some((start & !(page - 1), end))
        })
        .collect()
}

/// The executable `PT_LOAD` segments of `file` (a 64-bit ELF file of this machine:
/// one the loader loaded), at `base`, in whole pages; `None` if its headers cannot
/// be read.
#[cfg(target_os = "linux")]
pub(crate) fn segments(file: &crate::file::PluginFile, base: usize) -> Option<Vec<(usize, usize)>> {
    use object::NativeEndian as E;
    use object::elf::{ELFMAG, FileHeader64, PF_X, PT_LOAD, ProgramHeader64};
    use object::pod::{bytes_of_mut, bytes_of_slice_mut};

    // SAFETY: `FileHeader64` is plain bytes (`object::Pod`): all zeroes is a value.
    let mut header: FileHeader64<E> = unsafe { std::mem::zeroed() };
    file.read_exact_at(bytes_of_mut(&mut header), 0).ok()?;
    let count = usize::from(header.e_phnum.get(E));
    if header.e_ident.magic != ELFMAG
        || usize::from(header.e_phentsize.get(E)) != size_of::<ProgramHeader64<E>>()
        || count == 0
        || count > 512
    {
        return None;
    }
    // SAFETY: as above, for `ProgramHeader64`.
    let mut headers: Vec<ProgramHeader64<E>> = vec![unsafe { std::mem::zeroed() }; count];
    file.read_exact_at(bytes_of_slice_mut(&mut headers), header.e_phoff.get(E)).ok()?;
    let code: Vec<(u64, u64)> = headers
        .iter()
        .filter(|h| h.p_type.get(E) == PT_LOAD && h.p_flags.get(E).0 & PF_X.0 != 0 && h.p_memsz.get(E) > 0)
        .map(|h| (h.p_vaddr.get(E), h.p_memsz.get(E)))
        .collect();
    place(&code, base)
}

/// The executable ranges of `/proc/self/maps` mapped from the file of device `dev`
/// and inode `ino`.
#[cfg(target_os = "linux")]
pub(crate) fn mapped_code(dev: u64, ino: u64) -> Vec<(usize, usize)> {
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let Some(maps) = read_proc("/proc/self/maps") else { return Vec::new() };
    maps.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (range, perms, _offset, device, inode) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
            let (maj, min) = device.split_once(':')?;
            let same = u32::from_str_radix(maj, 16).ok()? == major
                && u32::from_str_radix(min, 16).ok()? == minor
                && inode.parse::<u64>().ok()? == ino;
            if !same || !perms.contains('x') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some((usize::from_str_radix(start, 16).ok()?, usize::from_str_radix(end, 16).ok()?))
        })
        .collect()
}

/// A `/proc` file's text, read into a buffer large enough for the usual whole file
/// at once (`std::fs::read_to_string` sees `/proc` files as empty and reads them in
/// small, growing steps: ten `read`s for `/proc/self/maps`).
#[cfg(target_os = "linux")]
fn read_proc(path: &str) -> Option<String> {
    use std::io::Read;
    let mut text = String::with_capacity(16 * 1024);
    std::fs::File::open(path).ok()?.read_to_string(&mut text).ok()?;
    Some(text)
}

/// Whether `SigCgt` (see [`caught`]) is trusted: `UNKNOWN`, `TRUSTED` or `DISTRUSTED`.
#[cfg(target_os = "linux")]
mod sigcgt {
    use std::sync::atomic::AtomicU8;
    pub(super) static SIGCGT: AtomicU8 = AtomicU8::new(UNKNOWN);
    pub(super) const UNKNOWN: u8 = 0;
    pub(super) const TRUSTED: u8 = 1;
    pub(super) const DISTRUSTED: u8 = 2;
}

/// Every signal whose handler is a function of the library.
///
/// Only the signals with a handler at all are asked (`sigaction`) once
/// `/proc/thread-self/status` (`SigCgt`, see [`caught`]) has been seen to say which: at an
/// unload that found a handler by asking every signal, it named exactly those. Until
/// then (or if it ever named others: a `/proc` that is not the kernel's), every signal
/// is asked.
#[cfg(target_os = "linux")]
fn signals(which: &dyn Fn(usize) -> Option<usize>, found: &mut [Vec<Hazard>]) {
    use sigcgt::{DISTRUSTED, SIGCGT, TRUSTED, UNKNOWN};
    use std::sync::atomic::Ordering;
    let trust = SIGCGT.load(Ordering::Relaxed);
    let caught = if trust == DISTRUSTED { None } else { caught() };
    let only = caught.filter(|_| trust == TRUSTED);
    // The signals whose action could be read, and of those, the ones with a handler.
    let (mut asked, mut handlers) = (0u64, 0u64);
    for signal in 1..=libc::SIGRTMAX() {
        // (No bit past the 64 of `SigCgt`, where a target has more signals: such a
        // signal is always asked.)
        let bit = 1u64.checked_shl((signal - 1) as u32).unwrap_or(0);
        if bit != 0 && only.is_some_and(|only| only & bit == 0) {
            continue;
        }
        let Some(handler) = handler_of(signal) else { continue };
        asked |= bit;
        if handler != libc::SIG_DFL && handler != libc::SIG_IGN {
            handlers |= bit;
        }
        if let Some(i) = which(handler) {
            found[i].push(Hazard::SignalHandler { signal });
        }
    }
    if trust == UNKNOWN && handlers != 0 {
        // Every signal was asked: `SigCgt` is trusted if it named exactly these.
        let named = caught.map(|caught| caught & asked);
        SIGCGT.store(if named == Some(handlers) { TRUSTED } else { DISTRUSTED }, Ordering::Relaxed);
    }
}

/// The current handler of `signal` (`SIG_DFL`, `SIG_IGN` or a function's address), or
/// `None` if it cannot be read. glibc's `sigaction` refuses the two signals it keeps for
/// itself (32 and 33: thread cancellation and `setxid` across threads) with `EINVAL`,
/// but a library can install a handler for them with the raw system call, and such a
/// handler left behind is as much a hazard as any other: those two are read with the
/// system call itself where the kernel's `struct sigaction` starts with the handler
/// (x86-64, AArch64, RISC-V: the generic layout).
#[cfg(target_os = "linux")]
fn handler_of(signal: libc::c_int) -> Option<usize> {
    // SAFETY: `sigaction` with a null new action only reads the current one into
    // `old`, a zeroed `sigaction` (valid for every field).
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) } == 0 {
        return Some(old.sa_sigaction);
    }
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64"))]
    {
        // The kernel's `struct sigaction` on these: handler, flags, (restorer,) a mask
        // of 8 bytes — 32 bytes at most; the handler is its first word.
        let mut kernel = [0u64; 4];
        // SAFETY: `rt_sigaction` with a null new action writes the current one, at most
        // 32 bytes for a mask of 8 (the size passed), into `kernel`, which is 32 bytes
        // and outlives the call; it reads no other memory.
        let read = unsafe {
            libc::syscall(libc::SYS_rt_sigaction, signal, std::ptr::null::<u8>(), kernel.as_mut_ptr(), 8usize)
        };
        if read == 0 {
            return usize::try_from(kernel[0]).ok();
        }
    }
    None
}

/// The signals with a handler that is a function (neither the default action nor
/// ignored), bit `n - 1` for signal `n`: `SigCgt` of `/proc/thread-self/status` (the
/// calling thread's, alive by construction, whose handlers are the process's), which the
/// kernel fills from the process's handlers (`collect_sigign_sigcatch`), in one read
/// instead of a `sigaction` per signal (~3.5 µs against ~5.6 µs for all 64). `None`
/// where it cannot be read. (Not every `/proc` is the kernel's: an emulated one may
/// print zeros; [`signals`] trusts it only once it named the handlers it found.)
#[cfg(target_os = "linux")]
fn caught() -> Option<u64> {
    use std::io::Read;
    // The whole file (~1.5 kB) in one read: `SigCgt` is whole once its line ends.
    let mut text = [0u8; 8192];
    let n = std::fs::File::open("/proc/thread-self/status").ok()?.read(&mut text).ok()?;
    let line = text[..n].split(|&b| b == b'\n').find_map(|line| line.strip_prefix(b"SigCgt:"))?;
    // The last line read may be cut short: only a line ended by a newline counts.
    let end = line.as_ptr() as usize + line.len() - text.as_ptr() as usize;
    if end >= n {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(line).ok()?.trim(), 16).ok()
}

#[cfg(target_os = "linux")]
/// The `pthread` keys in use whose destructor is a subject's code and that a thread
/// holds a value for: hazards. Returns the (subject, thread) pairs of threads that may
/// be running such a destructor right now (see [`held_keys`]), for [`threads`] to look
/// at whatever their age.
fn keys(which: &dyn Fn(usize) -> Option<usize>, found: &mut [Vec<Hazard>]) -> Vec<(usize, u32)> {
    /// glibc's `struct pthread_key_struct`: a sequence number (odd: in use) and the
    /// destructor. Internal to glibc, so its layout is checked against glibc's own
    /// description of it for debuggers before anything is read.
    #[repr(C)]
    struct Key {
        seq: usize,
        destructor: usize,
    }
    // SAFETY: `dlsym` with a NUL-terminated name; a missing symbol is null.
    let (table, description) = unsafe {
        (
            libc::dlsym(libc::RTLD_DEFAULT, c"__pthread_keys".as_ptr()),
            libc::dlsym(libc::RTLD_DEFAULT, c"_thread_db___pthread_keys".as_ptr()),
        )
    };
    if table.is_null() || description.is_null() {
        return Vec::new();
    }
    // SAFETY: glibc's `_thread_db_*` descriptions are `uint32_t[3]`: element size in
    // bits, element count, offset.
    let [bits, count, _] = unsafe { description.cast::<[u32; 3]>().read() };
    if bits as usize != 8 * size_of::<Key>() || count == 0 || count > 1 << 16 {
        return Vec::new();
    }
    // The keys in use whose destructor is a subject's: (key, its sequence number,
    // the subject).
    let mut theirs = Vec::new();
    for key in 0..count {
        // SAFETY: `__pthread_keys` is glibc's array of `count` such entries (checked
        // above); each word is read with a volatile load, as another thread may be
        // creating or deleting a key meanwhile (a torn read only misjudges that key).
        let entry = unsafe { table.cast::<Key>().add(key as usize) };
        // SAFETY: as above.
        let (seq, destructor) = unsafe {
            (std::ptr::addr_of!((*entry).seq).read_volatile(), std::ptr::addr_of!((*entry).destructor).read_volatile())
        };
        if seq & 1 == 1
            && let Some(i) = which(destructor)
        {
            theirs.push((key, seq, i));
        }
    }
    if theirs.is_empty() {
        return Vec::new();
    }
    // A destructor runs only at the exit of a thread holding a value for its key; a
    // thread gets one only by running the library's code (`pthread_setspecific`).
    // Keys no live thread holds a value for are no hazard (a `std` of the plugin makes
    // such a key for the first thread-local destructor of each thread, and any plugin
    // that ever started a thread had one left for good); where the threads' values
    // cannot be read, every key is.
    let keys: Vec<(u32, usize)> = theirs.iter().map(|&(key, seq, _)| (key, seq)).collect();
    let held = held_keys(&keys).unwrap_or_else(|| vec![Held { value: true, ending: Vec::new() }; keys.len()]);
    let mut ending = Vec::new();
    for ((key, _, i), held) in theirs.into_iter().zip(held) {
        if held.value {
            found[i].push(Hazard::KeyDestructor { key });
        }
        ending.extend(held.ending.into_iter().map(|tid| (i, tid)));
    }
    ending
}

/// What [`held_keys`] found of one key.
#[cfg(target_os = "linux")]
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    /// A thread holds a value for it: its destructor runs at that thread's exit.
    value: bool,
    /// Live threads with the key's sequence number and no value: each may be running
    /// its destructor right now (glibc clears the value just before the call, and the
    /// destructor may block), or has set its value back to null, or runs on a `struct
    /// pthread` glibc reused from a thread that held a value. Which, only its stack tells.
    ending: Vec<u32>,
}

/// For each key (number, sequence number), whether a thread of the process holds a
/// value for it, and which live threads have its sequence number with no value (see
/// [`Held`]): an entry with the key's sequence number was set by
/// `pthread_setspecific` (glibc checks it before it runs the destructor at the
/// thread's exit, after clearing the value). `None` where it cannot be told.
///
/// Read the way a debugger's `libthread_db` reads it (`td_thr_tsd`), from glibc's own
/// descriptions of its layout (`_thread_db_*`, checked before anything is read): the
/// threads are the two lists of `_rtld_global` (`_dl_stack_used`: stacks glibc
/// allocated; `_dl_stack_user`: the main thread's and given stacks), each `struct
/// pthread` linked by its `list`, alive while its `tid` is not zero (the kernel clears
/// it when the thread is gone); a thread's values, `specific[key / 32][key % 32]`.
/// Every word is read through `/proc/self/mem`, so memory freed or unmapped by a
/// thread ending meanwhile is read as stale bytes or an error, never a fault; a list
/// changed under the walk (a thread ending: its stack goes to glibc's cache list) shows
/// as a node seen twice, and the walk is made again (a few times, then `None`). A thread started during the walk may be missed: it holds
/// no value of a library nothing runs (its values start null, and only the library's
/// code sets them; a thread running that code is a hazard of its own).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn held_keys(keys: &[(u32, usize)]) -> Option<Vec<Held>> {
    use std::os::unix::fs::FileExt;
    /// A description `uint32_t[3]`: field size in bits, element count, offset.
    fn described(name: &std::ffi::CStr) -> Option<[u32; 3]> {
        // SAFETY: `dlsym` with a NUL-terminated name; a missing symbol is null.
        let at = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        // SAFETY: glibc's `_thread_db_*` field descriptions are `const uint32_t[3]`.
        (!at.is_null()).then(|| unsafe { at.cast::<[u32; 3]>().read() })
    }
    const WORD: u32 = usize::BITS;
    let word = size_of::<usize>();
    let field =
        |name: &std::ffi::CStr, bits: u32| described(name).filter(|d| d[0] == bits && d[1] == 1).map(|d| d[2] as usize);
    let list = field(c"_thread_db_pthread_list", 2 * WORD)?;
    let tid_at = field(c"_thread_db_pthread_tid", 32)?;
    let next = field(c"_thread_db_list_t_next", WORD)?;
    let used = field(c"_thread_db_rtld_global__dl_stack_used", 2 * WORD)?;
    let user = field(c"_thread_db_rtld_global__dl_stack_user", 2 * WORD)?;
    let seq_at = field(c"_thread_db_pthread_key_data_seq", WORD)?;
    let data_at = field(c"_thread_db_pthread_key_data_data", WORD)?;
    // `specific`: an array of pointers, described as one field of all its bits.
    let [bits, 1, specific] = described(c"_thread_db_pthread_specific")? else { return None };
    let (first, specific) = ((bits / WORD) as usize, specific as usize);
    // A second-level block: `count` entries of `struct pthread_key_data`.
    let [entry_bits, second, 0] = described(c"_thread_db_pthread_key_data_level2_data")? else { return None };
    let (entry, second) = ((entry_bits / 8) as usize, second as usize);
    if bits % WORD != 0 || first == 0 || second == 0 || entry < seq_at.max(data_at) + word {
        return None;
    }
    // SAFETY: `dlsym` with a NUL-terminated name; a missing symbol is null.
    let rtld = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_rtld_global".as_ptr()) } as usize;
    if rtld == 0 || keys.iter().any(|&(key, _)| key as usize >= first * second) {
        return None;
    }
    let mem = std::fs::File::open("/proc/self/mem").ok()?;
    let read = |at: usize| {
        let mut bytes = [0u8; size_of::<usize>()];
        mem.read_exact_at(&mut bytes, at as u64).ok().map(|()| usize::from_ne_bytes(bytes))
    };
    let read_u32 = |at: usize| {
        let mut bytes = [0u8; 4];
        mem.read_exact_at(&mut bytes, at as u64).ok().map(|()| u32::from_ne_bytes(bytes))
    };
    // One walk of both lists; `None` where a list changed under it (a node seen
    // twice: the walk went into another list, glibc's cache, say) or a word could not
    // be read (memory of a thread that ended).
    let walk = || {
        let mut held = vec![Held { value: false, ending: Vec::new() }; keys.len()];
        let mut seen = std::collections::HashSet::new();
        for head in [rtld + used, rtld + user] {
            let mut at = read(head + next)?;
            while at != head {
                if seen.len() > 1 << 16 || at < list || !seen.insert(at) {
                    return None;
                }
                let thread = at - list;
                let tid = read_u32(thread + tid_at)?;
                for (&(key, seq), held) in keys.iter().zip(held.iter_mut()) {
                    let (key, level) = (key as usize, key as usize / second);
                    let block = read(thread + specific + level * word)?;
                    if block == 0 {
                        continue;
                    }
                    let value = block + (key % second) * entry;
                    if read(value + seq_at)? != seq {
                        continue;
                    }
                    if read(value + data_at)? != 0 {
                        held.value = true;
                    } else if tid != 0 {
                        held.ending.push(tid);
                    }
                }
                at = read(at + next)?;
            }
        }
        Some(held)
    };
    // A few times: threads starting and ending beside the walk change the lists (and
    // a failed walk makes every key a hazard).
    (0..4).find_map(|_| walk())
}

/// Without glibc, the threads' values cannot be read.
#[cfg(all(target_os = "linux", not(target_env = "gnu")))]
fn held_keys(_keys: &[(u32, usize)]) -> Option<Vec<Held>> {
    None
}

/// Threads whose instruction pointer, or a word of whose live stack, is in a
/// subject's code.
///
/// For the library being unloaded, only threads started since it was loaded (its
/// `since`): a thread older than the library runs its code only through calls, and a
/// library is never closed while a call into it is under way (the call holds a
/// reference to it); while an older thread's stack can hold stale words from a
/// library once mapped at the same addresses, which would keep libraries mapped for
/// nothing. Two exceptions, code that runs outside any call: a thread in `ending`
/// (one that may be running a `pthread` key destructor of that subject, see
/// [`keys`]) is looked at whatever its age; and a signal handler already running
/// when it was replaced is not seen (documented; a library ever kept for a handler
/// is kept for good, see [`look_again`]). For a library kept before (see
/// [`Subject::kept`]) this thread is looked at too, if it is young enough (a thread
/// of the library, or one it started, may be the one unloading another plugin).
/// Old threads are not looked at for a kept library either: stale words of calls
/// made into it while it was loaded (the host's main thread, say) would keep it for
/// as long as they live.
///
/// A thread never seen blocked is waited for (up to ~25 ms) for the library being
/// unloaded, and not seen if it never blocks (documented); for a library kept before,
/// or a thread in `ending`, it is a hazard. What cannot be read (`/proc` out of
/// descriptors, say; not a `/proc` that is not there at all) is a hazard
/// ([`Hazard::NotLookedAt`]) of every subject it could hide one of.
#[cfg(target_os = "linux")]
fn threads(
    which: &dyn Fn(usize) -> Option<usize>,
    subjects: &[Subject<'_>],
    ending: &[(usize, u32)],
    from: usize,
    found: &mut [Vec<Hazard>],
) {
    use std::os::unix::fs::FileExt;

    use std::os::unix::fs::MetadataExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    /// Whether `/proc/self/task`'s link count has been seen to be the kernel's (2 and
    /// one per thread): at an unload that listed two threads or more, it matched the
    /// listing. Until then, or until `SigCgt` was seen to be the kernel's, the
    /// directory is always listed (a `/proc` that is not the kernel's could print a
    /// fixed count, and would turn the look at threads off).
    static COUNTED: AtomicBool = AtomicBool::new(false);
    // A failure to read: a hazard of every subject it could hide one of (all of them,
    // but where `/proc` is not there at all, which hides nothing new: such a process
    // was never looked at, and only a kept library is kept for it).
    let failed = |found: &mut [Vec<Hazard>], error: &std::io::Error, what: &str| {
        let absent = error.kind() == std::io::ErrorKind::NotFound;
        for (i, s) in subjects.iter().enumerate() {
            if s.kept || !absent {
                found[i].push(Hazard::NotLookedAt { what: format!("{what}: {error}") });
            }
        }
    };
    let any_kept = subjects.iter().any(|s| s.kept);
    // At a link count of 3, this thread is the only one, and there is nothing to look
    // at (one `statx`, not the directory's open, reads and close) but this thread, for
    // a library kept before or a key destructor it may be running.
    let links = std::fs::metadata("/proc/self/task").map(|task| task.nlink()).ok();
    let kernels = COUNTED.load(Ordering::Relaxed) || sigcgt::SIGCGT.load(Ordering::Relaxed) == sigcgt::TRUSTED;
    // SAFETY: `gettid` has no preconditions.
    let me = unsafe { libc::gettid() } as u32;
    let tasks: Vec<u32> = if links == Some(3) && kernels {
        if !any_kept && ending.is_empty() {
            return;
        }
        vec![me]
    } else {
        match std::fs::read_dir("/proc/self/task") {
            Ok(tasks) => tasks
                .flatten()
                .filter_map(|task| task.file_name().to_str().and_then(|t| t.parse::<u32>().ok()))
                .collect(),
            Err(e) => return failed(found, &e, "/proc/self/task"),
        }
    };
    if tasks.len() >= 2 && links == Some(tasks.len() as u64 + 2) {
        COUNTED.store(true, Ordering::Relaxed);
    }
    let own = OWN.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // Opened and read at the first thread to look at (often none: a host whose
    // threads all predate the library, or that has no other thread).
    let mut mem: Option<std::io::Result<std::fs::File>> = None;
    let mut regions = Regions::default();
    let mut tie_break = TieBreak::default();
    for tid in tasks {
        let in_ending = |i: usize| ending.contains(&(i, tid));
        let ends = ending.iter().any(|&(_, t)| t == tid);
        if !ends && (own.contains(&tid) || (tid == me && !any_kept)) {
            continue;
        }
        // Its start, read only when a subject's look depends on it.
        let aged = subjects.iter().enumerate().any(|(i, s)| (s.kept || tid != me) && !in_ending(i));
        let started = if aged { start_tick(tid) } else { None };
        // The subjects this thread is looked at for (a thread whose start time cannot
        // be read, for all), and for which a thread never seen blocked is a hazard.
        let looked: Vec<bool> = subjects
            .iter()
            .enumerate()
            .map(|(i, s)| {
                in_ending(i)
                    || ((s.kept || tid != me)
                        && started.is_none_or(|started| {
                            // (What breaks a tie is read only for a thread it could
                            // make older: not one with a higher id than the loader's,
                            // such as the library's own threads.)
                            let tie = if tid <= s.since.loader { tie_break.tie(s.since, started) } else { None };
                            !s.since.older(tid, started, tie)
                        }))
            })
            .collect();
        let strict: Vec<bool> = subjects.iter().enumerate().map(|(i, s)| s.kept || in_ending(i)).collect();
        if !looked.contains(&true) {
            continue;
        }
        let patient = (0..subjects.len()).any(|i| looked[i] && !strict[i]);
        let hazard_for_strict = |found: &mut [Vec<Hazard>]| {
            for i in 0..subjects.len() {
                if looked[i] && strict[i] {
                    found[i].push(Hazard::Thread { tid });
                }
            }
        };
        // Stack and instruction pointers of a thread blocked in the kernel; a thread
        // running right now says `running`: look again a few times (for a library
        // being unloaded now; for one kept before, such a thread is a hazard).
        let mut pointers = None;
        if tid == me {
            // This thread's own stack from the caller's frame up (its instruction
            // pointer is here, in tomada's code).
            pointers = Some((from, 0));
        } else {
            // Whether it was last seen running (not gone).
            let mut running = false;
            for attempt in 0..20u32 {
                let text = match task_file(tid, "syscall") {
                    Ok(text) => text,
                    // Gone: nothing of it to look at.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => {
                        running = false;
                        break;
                    }
                    Err(e) => {
                        failed(found, &e, "a thread's /proc/self/task/<tid>/syscall");
                        running = false;
                        break;
                    }
                };
                let words: Vec<&str> = text.split_whitespace().collect();
                if words.len() >= 3 && words[0] != "running" {
                    let hex = |w: &str| usize::from_str_radix(w.trim_start_matches("0x"), 16).ok();
                    pointers = hex(words[words.len() - 2]).zip(hex(words[words.len() - 1]));
                    break;
                }
                running = true;
                if !patient {
                    break;
                }
                // At most ~25 ms in all for a thread that never blocks.
                std::thread::sleep(std::time::Duration::from_micros(100 << attempt.min(4)));
            }
            if pointers.is_none() && running {
                // Never seen blocked: a hazard where that is strict (for the library
                // unloaded now, not seen, as before).
                hazard_for_strict(found);
            }
        }
        let Some((sp, pc)) = pointers else { continue };
        let mut hit = vec![false; subjects.len()];
        let mut left = looked.iter().filter(|&&l| l).count();
        let mut mark = |addr: usize| {
            if let Some(i) = which(addr)
                && looked[i]
                && !hit[i]
            {
                hit[i] = true;
                left -= 1;
            }
            left == 0
        };
        let done = mark(pc);
        let mem = match mem.get_or_insert_with(|| std::fs::File::open("/proc/self/mem")) {
            Ok(mem) => mem,
            Err(e) => {
                // As before this was lazy: without `/proc/self/mem`, no stack is read.
                let e = std::io::Error::new(e.kind(), e.to_string());
                return failed(found, &e, "/proc/self/mem");
            }
        };
        if !done {
            match regions.end(sp) {
                Some(end) => {
                    let mut offset = sp & !(size_of::<usize>() - 1);
                    let mut buf = vec![0u8; 64 * 1024];
                    'scan: while offset < end {
                        let n = (end - offset).min(buf.len());
                        if let Err(e) = mem.read_exact_at(&mut buf[..n], offset as u64) {
                            // A thread's stack that cannot be read (it ended, and its
                            // stack went, meanwhile; or out of memory).
                            if tid != me {
                                hazard_for_strict(found);
                            } else {
                                failed(found, &e, "this thread's stack");
                            }
                            break;
                        }
                        for word in buf[..n].chunks_exact(size_of::<usize>()) {
                            if mark(usize::from_ne_bytes(word.try_into().expect("a word"))) {
                                break 'scan;
                            }
                        }
                        offset += n;
                    }
                }
                // No mapping holds its stack pointer (or `/proc/self/maps` cannot be
                // read): a hazard where that is strict.
                None => hazard_for_strict(found),
            }
        }
        for (i, hit) in hit.into_iter().enumerate() {
            if hit {
                found[i].push(Hazard::Thread { tid });
            }
        }
    }
}

/// What ties between a thread's start and a load are broken with (see
/// [`Since::older`]), read once per look, and only for a thread started in the ticks
/// around a load: whether `/proc` numbers threads as `gettid` does, `pid_max`, and
/// the loaders' start ticks.
#[cfg(target_os = "linux")]
#[derive(Default)]
struct TieBreak {
    /// `pid_max`, if `/proc/thread-self` is this thread's, as `getpid` and `gettid`
    /// number it (not a `/proc` of another PID namespace's); read at the first need.
    ids: Option<Option<u32>>,
    read: Vec<(u32, Option<u64>)>,
}

#[cfg(target_os = "linux")]
impl TieBreak {
    /// The tie-break for a thread started at `started`, a load at `since`: `None`
    /// where it is not needed (outside the ticks around the load) or cannot be had.
    fn tie(&mut self, since: Since, started: u64) -> Option<(u64, u32)> {
        if since.loader == 0 || !(since.tick..=since.tick + 2).contains(&started) {
            return None;
        }
        let pid_max = (*self.ids.get_or_insert_with(|| {
            // SAFETY: `getpid` and `gettid` have no preconditions.
            let (pid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
            let own = std::fs::read_link("/proc/thread-self").ok()?;
            (own == std::path::Path::new(&format!("{pid}/task/{tid}"))).then_some(())?;
            read_proc("/proc/sys/kernel/pid_max")?.trim().parse().ok()
        }))?;
        let at = match self.read.iter().find(|(tid, _)| *tid == since.loader) {
            Some(&(_, at)) => at,
            None => {
                let at = start_tick(since.loader);
                self.read.push((since.loader, at));
                at
            }
        };
        Some((at?, pid_max))
    }
}

/// A thread's small `/proc/self/task/<tid>/<file>` (`stat`, `syscall`: a few hundred
/// bytes) in one `read`: an open, a read and a close, where `read_to_string` also asks
/// the size and reads again to see the end (a look at threads does this for every
/// thread of the process).
#[cfg(target_os = "linux")]
fn task_file(tid: u32, file: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut path = [0u8; 64];
    let len = {
        let mut at = &mut path[..];
        write!(at, "/proc/self/task/{tid}/{file}")?;
        64 - at.len()
    };
    let path = std::str::from_utf8(&path[..len]).map_err(std::io::Error::other)?;
    let mut text = [0u8; 2048];
    let mut f = std::fs::File::open(path)?;
    let n = f.read(&mut text)?;
    // (Longer than the buffer: the rest, as `read_to_string` would.)
    if n == text.len() {
        let mut rest = Vec::from(text);
        f.read_to_end(&mut rest)?;
        return String::from_utf8(rest).map_err(std::io::Error::other);
    }
    std::str::from_utf8(&text[..n]).map(str::to_owned).map_err(std::io::Error::other)
}

/// The ends of the mappings that threads' stack pointers lie in (where a stack scan
/// stops), asked of the kernel one address at a time (`PROCMAP_QUERY`, Linux 6.11:
/// a look-up in the process's tree of mappings, not the text of all of them); on an
/// older kernel, found in `/proc/self/maps`, read at most once per unload.
#[cfg(target_os = "linux")]
#[derive(Default)]
struct Regions {
    /// `/proc/self/maps`, opened at the first question (`Err`: it cannot be).
    file: Option<Result<std::fs::File, ()>>,
    /// Its text, once the kernel turned the query down.
    text: Option<String>,
}

#[cfg(target_os = "linux")]
impl Regions {
    /// The end of the mapping holding `addr`, if one does.
    fn end(&mut self, addr: usize) -> Option<usize> {
        if self.text.is_none()
            && let Ok(file) = self.file.get_or_insert_with(|| std::fs::File::open("/proc/self/maps").map_err(drop))
        {
            match query(file, addr) {
                Ok(end) => return end,
                Err(()) => self.text = Some(read_proc("/proc/self/maps").unwrap_or_default()),
            }
        }
        self.text.as_deref().unwrap_or_default().lines().find_map(|line| {
            let (start, end) = line.split_whitespace().next()?.split_once('-')?;
            let (start, end) = (usize::from_str_radix(start, 16).ok()?, usize::from_str_radix(end, 16).ok()?);
            (start..end).contains(&addr).then_some(end)
        })
    }
}

/// `PROCMAP_QUERY` on an open `/proc/<pid>/maps` (linux/fs.h; not in the `libc`
/// crate, hence written out here): the end of the mapping holding `addr`, `Ok(None)`
/// if none does, `Err(())` if this kernel has no such query (before Linux 6.11).
#[cfg(target_os = "linux")]
fn query(maps: &std::fs::File, addr: usize) -> Result<Option<usize>, ()> {
    use std::os::fd::AsRawFd;

    /// `struct procmap_query` (linux/fs.h), all of it: the kernel takes its size
    /// from `size`.
    #[repr(C)]
    #[derive(Default)]
    struct ProcmapQuery {
        size: u64,
        query_flags: u64,
        query_addr: u64,
        vma_start: u64,
        vma_end: u64,
        vma_flags: u64,
        vma_page_size: u64,
        vma_offset: u64,
        inode: u64,
        dev_major: u32,
        dev_minor: u32,
        vma_name_size: u32,
        build_id_size: u32,
        vma_name_addr: u64,
        build_id_addr: u64,
    }
    /// `_IOWR('f', 17, struct procmap_query)`.
    const PROCMAP_QUERY: u64 = (3 << 30) | ((size_of::<ProcmapQuery>() as u64) << 16) | ((b'f' as u64) << 8) | 17;
    // No flags: the mapping that holds `query_addr`, or `ENOENT`; no name or build ID
    // asked for (their sizes are zero).
    let mut q = ProcmapQuery { size: size_of::<ProcmapQuery>() as u64, query_addr: addr as u64, ..Default::default() };
    // SAFETY: `PROCMAP_QUERY` reads and writes one `struct procmap_query`, `q`, which
    // outlives the call, and (with both sizes zero) no other memory.
    if unsafe { libc::ioctl(maps.as_raw_fd(), PROCMAP_QUERY as _, &raw mut q) } == 0 {
        return Ok(usize::try_from(q.vma_end).ok());
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ENOENT) => Ok(None),
        _ => Err(()),
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The signals `/proc/thread-self/status` says have a handler are the ones whose
    /// `sigaction` is a function: a handler installed here shows, one restored goes.
    #[test]
    fn the_caught_signals_are_those_with_a_handler() {
        extern "C" fn handler(_: libc::c_int) {}
        // `None` for a signal whose action cannot be read (glibc's own, 32 and 33).
        let with_handler = |signal: libc::c_int| {
            // SAFETY: reads the current action into a zeroed `sigaction`.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            let read = unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) } == 0;
            read.then_some(old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN)
        };
        // The last real-time signal: no test of this crate uses it.
        let signal = libc::SIGRTMAX();
        let bit = 1u64 << (signal - 1);
        let before = caught().expect("`/proc/thread-self/status` has `SigCgt`");
        assert_eq!(before & bit, 0);
        // SAFETY: a handler that does nothing, installed and restored by this test
        // alone; `previous` receives the action it replaces.
        let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = handler as *const () as usize;
        // SAFETY: as above.
        assert_eq!(unsafe { libc::sigaction(signal, &action, &mut previous) }, 0);
        let during = caught().unwrap();
        // SAFETY: puts back the action saved above.
        assert_eq!(unsafe { libc::sigaction(signal, &previous, std::ptr::null_mut()) }, 0);
        let after = caught().unwrap();
        assert_ne!(during & bit, 0, "a handler installed is caught");
        assert_eq!(after & bit, 0, "the default action restored is not");
        // Every signal this process now catches has a function as its handler.
        for n in 1..=libc::SIGRTMAX() {
            if n != signal && after & (1 << (n - 1)) != 0 {
                assert_ne!(with_handler(n), Some(false), "signal {n}");
            }
        }
        // And the hazard check still finds a handler that is the library's code: here,
        // "the library" is the test's own handler.
        let at = handler as *const () as usize;
        // SAFETY: as above.
        assert_eq!(unsafe { libc::sigaction(signal, &action, &mut previous) }, 0);
        let mut found = vec![Vec::new()];
        signals(&|addr| (addr == at).then_some(0), &mut found);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::sigaction(signal, &previous, std::ptr::null_mut()) }, 0);
        assert_eq!(found, vec![vec![Hazard::SignalHandler { signal }]]);
    }

    /// A handler for one of glibc's own signals (32, thread cancellation), installed
    /// with the raw system call as a library could, is found (glibc's `sigaction`
    /// cannot read it) — and the kernel's `SigCgt` names it too.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64"))]
    #[test]
    fn a_handler_of_glibcs_own_signals_is_found() {
        extern "C" fn handler(_: libc::c_int) {}
        let signal = 32;
        // SAFETY: reads into a zeroed `sigaction`; glibc refuses this signal.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        assert_ne!(unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) }, 0, "glibc reads signal 32 now");
        let at = handler as *const () as usize;
        let mut saved = [0u64; 4];
        let mut action = [0u64; 4];
        action[0] = at as u64;
        // SAFETY: `rt_sigaction` reads `action` (the kernel's `struct sigaction`: this
        // handler, no flags, an empty mask) and writes the action it replaces into
        // `saved`, both 32 bytes; signal 32 (glibc's cancellation) is sent by nothing in
        // this test binary, which cancels no thread, and is restored below.
        let set = unsafe { libc::syscall(libc::SYS_rt_sigaction, signal, action.as_ptr(), saved.as_mut_ptr(), 8usize) };
        assert_eq!(set, 0);
        let seen = handler_of(signal);
        let cgt = caught();
        let mut found = vec![Vec::new()];
        signals(&|addr| (addr == at).then_some(0), &mut found);
        // SAFETY: puts back the action saved above, read from the kernel as it was.
        let restored = unsafe {
            libc::syscall(libc::SYS_rt_sigaction, signal, saved.as_ptr(), std::ptr::null_mut::<u64>(), 8usize)
        };
        assert_eq!(restored, 0);
        assert_eq!(seen, Some(at));
        assert_ne!(cgt.expect("`SigCgt`") & (1 << (signal - 1)), 0, "the kernel names it");
        assert_eq!(found, vec![vec![Hazard::SignalHandler { signal }]]);
        assert_eq!(handler_of(signal).map(|h| h == at), Some(false), "restored");
    }

    /// An address is found in the one subject whose code holds it, and nowhere else:
    /// at the edges of ranges, between them, and past overlapping ones.
    #[test]
    fn an_address_is_found_in_the_subject_whose_code_holds_it() {
        let a = [(0x1000, 0x2000), (0x5000, 0x6000)];
        let b = [(0x3000, 0x4000)];
        // A malformed library's segments overlapping (and one empty).
        let c = [(0x8000, 0x9000), (0x7000, 0xa000), (0xb000, 0xb000)];
        let subjects =
            [&a[..], &b[..], &c[..]].map(|code| Subject { code, since: Since { tick: 0, loader: 0 }, kept: false });
        let ranges = Ranges::new(&subjects);
        let cases = [
            (0, None),
            (0xfff, None),
            (0x1000, Some(0)),
            (0x1fff, Some(0)),
            (0x2000, None),
            (0x3000, Some(1)),
            (0x3fff, Some(1)),
            (0x4000, None),
            (0x5800, Some(0)),
            (0x6000, None),
            (0x7000, Some(2)),
            (0x8800, Some(2)),
            (0x9800, Some(2)),
            (0xa000, None),
            (0xb000, None),
            (usize::MAX, None),
        ];
        for (addr, subject) in cases {
            assert_eq!(ranges.which(addr), subject, "{addr:#x}");
        }
    }

    /// A thread's `/proc` file read in one `read` is the whole file; a thread that
    /// is not there is `NotFound`.
    #[test]
    fn a_threads_proc_file_is_read_whole() {
        // SAFETY: `gettid` has no preconditions.
        let me = unsafe { libc::gettid() } as u32;
        let stat = task_file(me, "stat").unwrap();
        let whole = std::fs::read_to_string(format!("/proc/self/task/{me}/stat")).unwrap();
        // (Times and counters move between the two reads: compare up to the state.)
        let head = |s: &str| {
            s.rsplit_once(')').map(|(name, rest)| (name.to_owned(), rest.split_whitespace().next().map(str::to_owned)))
        };
        assert_eq!(head(&stat), head(&whole));
        assert!(stat.ends_with('\n') && stat.split_whitespace().count() == whole.split_whitespace().count(), "{stat}");
        assert_eq!(task_file(u32::MAX / 2, "stat").unwrap_err().kind(), std::io::ErrorKind::NotFound);
    }

    /// The executable mappings of this test binary: "a library" whose code every
    /// thread of this process has on its stack.
    fn own_code() -> Vec<(usize, usize)> {
        use std::os::unix::fs::MetadataExt;
        let exe = std::fs::metadata(std::env::current_exe().unwrap()).unwrap();
        let code = mapped_code(exe.dev(), exe.ino());
        assert!(!code.is_empty());
        code
    }

    /// The thread doing the look is looked at for a library kept before (a thread of
    /// that library may be the one unloading another plugin) if it started since,
    /// never for the one being unloaded (held by no call, so not in it).
    #[test]
    fn the_calling_thread_is_looked_at_only_for_a_library_kept_before() {
        let code = own_code();
        // SAFETY: `gettid` has no preconditions.
        let me = unsafe { libc::gettid() } as u32;
        let kept = hazards(&[Subject { code: &code, since: Since { tick: 0, loader: 0 }, kept: true }], here());
        assert!(kept[0].contains(&Hazard::Thread { tid: me }), "{:?}", kept[0]);
        let now = hazards(&[Subject { code: &code, since: Since { tick: 0, loader: 0 }, kept: false }], here());
        assert!(!now[0].contains(&Hazard::Thread { tid: me }), "{:?}", now[0]);
        // Loaded after this thread started: not looked at (it runs the library's code
        // only through calls, and stale words of those would keep it for good).
        let later = hazards(&[Subject { code: &code, since: since_after_start(), kept: true }], here());
        assert!(!later[0].contains(&Hazard::Thread { tid: me }), "{:?}", later[0]);
    }

    /// An address on this thread's stack, in the caller's frame or above (where a
    /// look at this thread's stack starts).
    #[inline(always)]
    fn here() -> usize {
        let here = 0usize;
        std::hint::black_box(&raw const here) as usize
    }

    /// A load time well after this thread started (it has run for a while by the
    /// time it asks: the tests' threads start before the first test runs).
    fn since_after_start() -> Since {
        // SAFETY: `gettid` has no preconditions.
        let me = unsafe { libc::gettid() } as u32;
        Since { tick: start_tick(me).unwrap() + 1, loader: 0 }
    }

    /// A thread started in the ticks around a load is older than the library when
    /// its id is the loader's or below it, if the loader started in those ticks too,
    /// `pid_max` is at least the kernel's smallest default and the ids are close
    /// enough that no wrap came between; otherwise ticks decide.
    #[test]
    fn threads_started_in_the_ticks_of_a_load_are_told_apart_by_their_ids() {
        let since = Since { tick: 1000, loader: 5000 };
        let tie = |at: u64| Some((at, 32_768));
        // By ticks alone: before the tick, older; after the next one, not, whatever the id.
        assert!(since.older(9000, 999, None));
        assert!(!since.older(4000, 1003, tie(1000)), "a later start with a lower id is a wrap");
        // In the ticks of the load.
        for started in 1000..=1002 {
            assert!(since.older(4999, started, tie(1000)), "{started}");
            assert!(since.older(5000, started, tie(1000)), "the loader itself");
            assert!(since.older(4000, started, tie(999)));
            assert!(since.older(4000, started, tie(1001)));
            assert!(!since.older(5001, started, tie(1000)), "started after the loader");
            assert!(!since.older(4000, started, None), "no tie-break to be had");
            assert!(!since.older(4000, started, tie(998)), "the loader started well before");
            assert!(!since.older(4000, started, tie(1002)), "the loader started after the load");
            assert!(!since.older(4999, started, Some((1000, 32_767))), "a small `pid_max`");
        }
        // Just under `pid_max / 2 - 300` below the loader, and just not.
        let far = Since { tick: 1000, loader: 20_000 };
        assert!(far.older(20_000 - 16_083, 1001, tie(1000)));
        assert!(!far.older(20_000 - 16_084, 1001, tie(1000)), "a wrap could be between");
        assert!(!Since { tick: 1000, loader: 0 }.older(0, 1000, tie(1000)), "no loader known");
    }

    /// With real threads: one started before the loader, in the same tick, is not
    /// looked at (its stack holds this binary's code, as every thread's does), while
    /// without the loader's id it is; one started after the loader is looked at.
    #[test]
    fn a_thread_started_before_the_loader_in_the_same_tick_is_not_looked_at() {
        let code = own_code();
        let parked = || {
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let (tid_tx, tid_rx) = std::sync::mpsc::channel();
            let thread = std::thread::spawn(move || {
                // SAFETY: `gettid` has no preconditions.
                tid_tx.send(unsafe { libc::gettid() } as u32).unwrap();
                let _ = rx.recv();
            });
            let tid = tid_rx.recv().unwrap();
            // Blocked in the kernel, so its stack is read (bounded: a guard, not a measure).
            for _ in 0..10_000 {
                if task_file(tid, "syscall").is_ok_and(|t| !t.starts_with("running")) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            (tid, tx, thread)
        };
        // Until the loader starts in the tick of the earlier thread or the next (nearly
        // always the first time; a loaded machine can put more between them), and the
        // ids came in order (no wrap of the ids between the threads).
        let (earlier, (loader, loader_started), later, parked_threads) = loop {
            let (earlier, loader, later) = (parked(), parked(), parked());
            let (e, l) = (start_tick(earlier.0).unwrap(), start_tick(loader.0).unwrap());
            if l <= e + 1 && earlier.0 < loader.0 && loader.0 < later.0 {
                break (earlier.0, (loader.0, l), later.0, [earlier, loader, later]);
            }
        };
        let look = |since: Since| {
            let subjects = [Subject { code: &code, since, kept: false }];
            hazards(&subjects, here()).remove(0)
        };
        // Loaded in the tick the loader started in (`tick` is one early), where the
        // earlier thread started too, or in the tick before.
        let since = Since { tick: loader_started - 1, loader };
        if TieBreak::default().tie(since, loader_started).is_none() {
            // (`pid_max` under the kernel's smallest default, or a `/proc` of another
            // PID namespace: no tie-break on this machine.)
            eprintln!("no tie-break by thread ids here: not tested");
            return;
        }
        let found = look(since);
        assert!(!found.contains(&Hazard::Thread { tid: earlier }), "{found:?}");
        assert!(!found.contains(&Hazard::Thread { tid: loader }), "the loader itself: {found:?}");
        assert!(
            found.contains(&Hazard::Thread { tid: later }),
            "{found:?} earlier {earlier:?} loader {loader} later {later} {:?}",
            task_file(later, "syscall")
        );
        let found = look(Since { loader: 0, ..since });
        assert!(found.contains(&Hazard::Thread { tid: earlier }), "{found:?}");
        assert!(found.contains(&Hazard::Thread { tid: loader }), "{found:?}");
        for (_, tx, thread) in parked_threads {
            drop(tx);
            thread.join().unwrap();
        }
    }

    /// Whether a live thread holds a value for a key is read from glibc's thread
    /// list: a value set on another thread shows while that thread lives and goes
    /// with it; set back to null on a live thread, the thread is one that may be
    /// running the destructor; a key deleted and made again (another sequence number)
    /// does not take the old values for its own.
    #[test]
    fn the_values_threads_hold_for_a_key_are_read() {
        extern "C" fn destructor(_: *mut std::ffi::c_void) {}
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: makes a key, deleted at the end of this test.
        assert_eq!(unsafe { libc::pthread_key_create(&mut key, Some(destructor)) }, 0);
        let seq = |key: libc::pthread_key_t| {
            // SAFETY: glibc's `__pthread_keys` as `keys` reads it (layout checked there).
            let table = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"__pthread_keys".as_ptr()) };
            assert!(!table.is_null());
            // SAFETY: entry `key` of that table: its sequence number, the first word.
            unsafe { table.cast::<[usize; 2]>().add(key as usize).read_volatile()[0] }
        };
        let look = |key| held_keys(&[(key, seq(key))]).expect("glibc's thread list read").remove(0);
        let held = |key| look(key).value;
        // SAFETY: `gettid` has no preconditions.
        let me = unsafe { libc::gettid() } as u32;
        assert_eq!(look(key), Held { value: false, ending: vec![] }, "a new key has no values");
        let (told, on_thread) = std::sync::mpsc::channel();
        let (go, gone) = std::sync::mpsc::channel::<()>();
        let (end, ended) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            // SAFETY: sets this thread's value of a live key (not a pointer to anything:
            // the destructor ignores it).
            unsafe { libc::pthread_setspecific(key, std::ptr::dangling::<std::ffi::c_void>()) };
            // SAFETY: `gettid` has no preconditions.
            told.send(unsafe { libc::gettid() } as u32).unwrap();
            gone.recv().unwrap();
            // Back to null, as glibc does just before it calls the destructor.
            // SAFETY: as above.
            unsafe { libc::pthread_setspecific(key, std::ptr::null()) };
            told.send(0).unwrap();
            let _ = ended.recv();
        });
        let other = on_thread.recv().unwrap();
        assert!(held(key), "another thread's value");
        go.send(()).unwrap();
        on_thread.recv().unwrap();
        // Its value null, the thread alive: one that may be running the destructor.
        assert_eq!(look(key), Held { value: false, ending: vec![other] }, "set back to null on a live thread");
        drop(end);
        thread.join().unwrap();
        assert_eq!(look(key), Held { value: false, ending: vec![] }, "gone with the thread");
        // A thread started now likely runs on that thread's stack, and its `struct
        // pthread` (kept by glibc for reuse, the key's sequence number and all): it
        // holds no value; at most it is one whose stack is to be looked at.
        let on_new = std::thread::scope(|s| s.spawn(|| look(key)).join().unwrap());
        assert!(!on_new.value, "a new thread holds nothing: {on_new:?}");
        // SAFETY: as above, on this thread.
        unsafe { libc::pthread_setspecific(key, std::ptr::dangling::<std::ffi::c_void>()) };
        assert!(held(key), "this thread's value");
        // SAFETY: as above.
        unsafe { libc::pthread_setspecific(key, std::ptr::null()) };
        assert_eq!(look(key), Held { value: false, ending: vec![me] }, "this thread, set back to null");
        // SAFETY: deletes the key; a new one likely takes its number with another
        // sequence number, and this thread's old value is not its.
        assert_eq!(unsafe { libc::pthread_key_delete(key) }, 0);
        let mut again: libc::pthread_key_t = 0;
        // SAFETY: makes a key, deleted below.
        assert_eq!(unsafe { libc::pthread_key_create(&mut again, Some(destructor)) }, 0);
        assert_eq!(look(again), Held { value: false, ending: vec![] }, "the new key (number {again}, was {key})");
        // SAFETY: deletes the key made above.
        unsafe { libc::pthread_key_delete(again) };
    }

    /// A thread that may be running a key destructor of the library (its value
    /// cleared, the thread alive) is looked at whatever its age: here, this test's
    /// thread, older than "the library" (this binary's code, `since` now), is found
    /// in it only when it is such a thread.
    #[test]
    fn a_thread_that_may_run_a_key_destructor_is_looked_at_whatever_its_age() {
        let code = own_code();
        // SAFETY: `gettid` has no preconditions.
        let me = unsafe { libc::gettid() } as u32;
        let subjects = [Subject { code: &code, since: since_after_start(), kept: false }];
        let ranges = Ranges::new(&subjects);
        let which = |addr: usize| ranges.which(addr);
        let mut found = vec![Vec::new()];
        threads(&which, &subjects, &[], here(), &mut found);
        assert!(!found[0].contains(&Hazard::Thread { tid: me }), "{:?}", found[0]);
        let mut found = vec![Vec::new()];
        threads(&which, &subjects, &[(0, me)], here(), &mut found);
        assert!(found[0].contains(&Hazard::Thread { tid: me }), "{:?}", found[0]);
    }

    /// What `threads` relies on to skip a process of one thread: `/proc/self/task`'s
    /// link count is 2 and one per thread. (Other tests start and end threads
    /// meanwhile: counted until two looks at the link count agree around a listing.)
    #[test]
    fn the_task_directory_links_one_per_thread() {
        use std::os::unix::fs::MetadataExt;
        let links = || std::fs::metadata("/proc/self/task").unwrap().nlink();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let held = std::thread::spawn(move || stopped.recv());
        let agreed = (0..10_000).any(|_| {
            let before = links();
            let listed = std::fs::read_dir("/proc/self/task").unwrap().count() as u64;
            before == links() && before == listed + 2
        });
        drop(stop);
        held.join().unwrap().unwrap_err();
        assert!(agreed, "`/proc/self/task` links 2 + its threads");
        assert!(links() >= 3);
    }

    /// The end of the mapping holding an address, asked of the kernel, is the one
    /// `/proc/self/maps` lists; an address nothing maps has none.
    #[test]
    fn a_mapping_end_by_query_is_the_one_in_the_maps() {
        let on_stack = 0u64;
        let addr = std::hint::black_box(&raw const on_stack) as usize;
        let text = Regions { file: None, text: Some(read_proc("/proc/self/maps").unwrap()) }.end(addr);
        assert!(text.is_some_and(|end| end > addr), "{text:?}");
        assert_eq!(Regions::default().end(addr), text);
        // The page at 0 is never mapped (`vm.mmap_min_addr`).
        assert_eq!(Regions::default().end(16), None);
        assert_eq!(Regions { file: None, text: Some(read_proc("/proc/self/maps").unwrap()) }.end(16), None);
    }
}
