//! Starts plugin processes from one thread that lives as long as the host.
//!
//! Linux sends the parent-death signal (`PR_SET_PDEATHSIG`) when the *thread* that
//! forked the child exits, not the process. A plugin restarted from a short-lived
//! thread (a thread pool's, a scoped thread) would be killed with that thread; forked
//! from this one, it dies only with the host.

use std::io;
use std::process::{Child, Command};
use std::sync::{Mutex, OnceLock, mpsc};
use std::thread::ThreadId;

type Job = Box<dyn FnOnce() + Send>;

/// The spawner thread's queue and id (`None` if it could not be started).
type Spawner = Option<(Mutex<mpsc::Sender<Job>>, ThreadId)>;

/// Spawns `command` from the spawner thread (or, if that thread cannot be started,
/// from the calling one).
#[cfg_attr(all(target_os = "linux", target_env = "gnu"), allow(dead_code))] // (Linux with glibc: `run`)
pub(crate) fn spawn(mut command: Command) -> io::Result<Child> {
    run(move || command.spawn())
}

/// The spawner thread, started on first use.
fn spawner() -> &'static Spawner {
    static SPAWNER: OnceLock<Spawner> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (jobs, incoming) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tomada-spawner".into())
            .spawn(move || {
                let _own = crate::unload::own_thread();
                for job in incoming {
                    // A job that panics must not end this thread: its end would
                    // kill every process it started (their parent-death signal).
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })
            .ok()
            .map(|thread| (Mutex::new(jobs), thread.thread().id()))
    })
}

/// Runs `start` (which starts a process) on the spawner thread (or, if that thread
/// cannot be started, on the calling one), and returns what it returned. On the
/// spawner thread itself (a job of [`detach`]), runs it there and then.
pub(crate) fn run<T: Send + 'static>(start: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    let Some((spawner, id)) = spawner() else { return start() };
    if std::thread::current().id() == *id {
        return start();
    }
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
    answer.recv().unwrap_or_else(|_| Err(io::Error::other("the spawner thread did not finish the start (it panicked)")))
}

/// Runs `job` on the spawner thread later, without waiting for it; `false` (and
/// `job` never runs) if there is no spawner thread: a process `job` starts anywhere
/// else would die with that other thread.
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))] // (spare runners: Linux with glibc)
pub(crate) fn detach(job: impl FnOnce() + Send + 'static) -> bool {
    let Some((spawner, _)) = spawner() else { return false };
    spawner.lock().unwrap_or_else(|p| p.into_inner()).send(Box::new(job)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_that_panics_leaves_the_spawner_thread_running() {
        let before = spawner().as_ref().map(|(_, id)| *id);
        assert!(detach(|| panic!("a job that panics (expected by this test)")));
        // A job after it still runs, on the same thread.
        let on = run(|| Ok(std::thread::current().id())).unwrap();
        assert_eq!(Some(on), before);
        // And `run`'s own job that panics is an error to its caller, not a hang.
        let err = run::<()>(|| panic!("a job of `run` that panics (expected by this test)")).unwrap_err();
        assert!(err.to_string().contains("spawner"), "{err}");
        assert_eq!(run(|| Ok(std::thread::current().id())).unwrap(), on);
    }
}
