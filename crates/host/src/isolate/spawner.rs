//! Starts plugin processes from one thread that lives as long as the host.
//!
//! Linux sends the parent-death signal (`PR_SET_PDEATHSIG`) when the *thread* that
//! forked the child exits, not the process. A plugin restarted from a short-lived
//! thread (a thread pool's, a scoped thread) would be killed with that thread; forked
//! from this one, it dies only with the host.

use std::io;
use std::process::{Child, Command};
use std::sync::{Mutex, OnceLock, mpsc};

type Request = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `command` from the spawner thread (or, if that thread cannot be started,
/// from the calling one).
pub(crate) fn spawn(mut command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Option<Mutex<mpsc::Sender<Request>>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("tomada-spawner".into())
            .spawn(move || {
                for (mut command, reply) in incoming {
                    let _ = reply.send(command.spawn());
                }
            })
            .ok()
            .map(|_| Mutex::new(requests))
    });
    let Some(spawner) = spawner else { return command.spawn() };
    let (reply, answer) = mpsc::channel();
    let sent = spawner.lock().unwrap_or_else(|p| p.into_inner()).send((command, reply));
    match sent {
        Ok(()) => answer.recv().unwrap_or_else(|_| Err(io::Error::other("the spawner thread is gone"))),
        Err(mpsc::SendError((mut command, _))) => command.spawn(),
    }
}
