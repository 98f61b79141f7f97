//! Starts plugin processes from one thread that lives as long as the host.
//!
//! Linux sends the parent-death signal (`PR_SET_PDEATHSIG`) when the *thread* that
//! forked the child exits, not the process. A plugin restarted from a short-lived
//! thread (a thread pool's, a scoped thread) would be killed with that thread; forked
//! from this one, it dies only with the host.

use std::io;
use std::process::{Child, Command};
use std::sync::{Mutex, OnceLock, mpsc};

type Job = Box<dyn FnOnce() + Send>;

/// Spawns `command` from the spawner thread (or, if that thread cannot be started,
/// from the calling one).
#[cfg_attr(all(target_os = "linux", target_env = "gnu"), allow(dead_code))] // (Linux with glibc: `run`)
pub(crate) fn spawn(mut command: Command) -> io::Result<Child> {
    run(move || command.spawn())
}

/// Runs `start` (which starts a process) on the spawner thread (or, if that thread
/// cannot be started, on the calling one), and returns what it returned.
pub(crate) fn run<T: Send + 'static>(start: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    static SPAWNER: OnceLock<Option<Mutex<mpsc::Sender<Job>>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, incoming) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tomada-spawner".into())
            .spawn(move || {
                for job in incoming {
                    job();
                }
            })
            .ok()
            .map(|_| Mutex::new(jobs))
    });
    let Some(spawner) = spawner else { return start() };
    let (reply, answer) = mpsc::channel();
    let job: Job = Box::new(move || {
        let _ = reply.send(start());
    });
    let sent = spawner.lock().unwrap_or_else(|p| p.into_inner()).send(job);
    match sent {
        Ok(()) => {}
        // (The thread is gone: the job runs here.)
        Err(mpsc::SendError(job)) => job(),
    }
    answer.recv().unwrap_or_else(|_| Err(io::Error::other("the spawner thread is gone")))
}
