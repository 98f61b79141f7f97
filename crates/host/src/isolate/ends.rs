//! A new child's channel, before the child starts (Unix): the host's ends (the socket,
//! the nudge pipe's write end, the shared memory and its bells) and the child's (each
//! with the number it takes there), and the environment that names them. The same for
//! a runner started for a plugin and for a spare runner started before any plugin is
//! chosen (see `spare.rs`): nothing here depends on the plugin but the plugin file,
//! which a spare receives later.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

#[cfg(target_os = "linux")]
use super::protocol::{BELL_FDS, LANE_FD, LANE_FDS, LANES_VAR, LAST_FD, SHM_FD};
use super::protocol::{CHILD_FD, FD_VAR, MAX_FRAME_VAR, NUDGE_FD, PARENT_VAR, PLUGIN_FD};
use super::transport::Link;
#[cfg(target_os = "linux")]
use super::transport::shm;
use super::{launch, protocol, steps};
use crate::{LaunchError, Step};

/// The host's ends of a child's channel.
pub(crate) struct Ends {
    /// The host's end of the socket (the handshake's channel).
    pub(crate) socket: UnixStream,
    /// The write end of the nudge pipe (see `Connection::nudge`).
    pub(crate) nudge: OwnedFd,
    /// A reader of each pipe the host writes (see `Connection::_readers`).
    pub(crate) readers: Vec<OwnedFd>,
    /// The shared memory and the host's bells, mapped by [`Ends::link`] (`None`: frames
    /// stay on the socket).
    #[cfg(target_os = "linux")]
    shared: Option<(OwnedFd, shm::Bells)>,
    /// The lanes' shared memories and the host's ends of their bells (see
    /// `Isolation::lanes`).
    #[cfg(target_os = "linux")]
    lanes: Vec<(OwnedFd, OwnedFd)>,
}

/// What the child inherits: each descriptor with its number there, and the last number.
pub(crate) type ChildEnds = (Vec<(OwnedFd, RawFd)>, RawFd);

/// Makes a channel: frames on the socket alone with `socket_only`, else through shared
/// memory after the handshake; `plugin` (the plugin file) passed at [`PLUGIN_FD`],
/// or if `None` (a spare runner: it comes later, over the socket) `/dev/null` there;
/// with `lanes` more pairs of rings (Linux, not with `socket_only`), at [`LANE_FD`] on.
///
/// A process out of descriptors (`EMFILE`: a host with many isolated plugins, each
/// holding about a dozen, under the common soft limit of 1,024) raises its soft limit
/// to its hard one, once, and tries again (see [`launch::raise_open_files`]).
pub(crate) fn make(
    socket_only: bool,
    lanes: usize,
    plugin: Option<BorrowedFd<'_>>,
) -> Result<(Ends, ChildEnds), LaunchError> {
    match make_once(socket_only, lanes, plugin) {
        Err(LaunchError::Setup { source, .. })
            if source.raw_os_error() == Some(libc::EMFILE) && launch::raise_open_files() =>
        {
            make_once(socket_only, lanes, plugin)
        }
        made => made,
    }
}

fn make_once(
    socket_only: bool,
    lanes: usize,
    plugin: Option<BorrowedFd<'_>>,
) -> Result<(Ends, ChildEnds), LaunchError> {
    let setup = |step: Step| move |source: std::io::Error| LaunchError::Setup { step, source };
    let (host_end, pair_end) = UnixStream::pair().map_err(setup(Step::SocketPair))?;
    // What the child inherits, each above every number passed here (`launch::above`)
    // until it takes its number there.
    // (The socket's end first, closed here as soon as it is duplicated: the host
    // must hold only its own end, or it never sees the end of a child that dies
    // while loading.)
    let child_end = launch::above(pair_end.as_fd())?;
    drop(pair_end);
    let mut pass = vec![(child_end, CHILD_FD)];
    match plugin {
        Some(plugin) => pass.push((launch::above(plugin)?, PLUGIN_FD)),
        // A spare runner: `/dev/null` holds the plugin file's number until the file
        // comes, so nothing the runner opens before it gets that number (and
        // `protocol::receive_plugin_file` replaces only this placeholder).
        None => {
            let placeholder = std::fs::File::open("/dev/null").map_err(setup(Step::Duplicate))?;
            pass.push((launch::above(placeholder.as_fd())?, PLUGIN_FD));
        }
    }
    let (nudge, nudge_reader, child_nudge) = launch::nudge_pipe()?;
    pass.push((child_nudge, NUDGE_FD));
    let mut readers = vec![nudge_reader];
    // The shared memory and its bells. (The child's ends of the bells are closed
    // here once duplicated, but for the read ends of those the host rings: see
    // `Connection::_readers`.)
    #[cfg(target_os = "linux")]
    let lanes = if socket_only { 0 } else { lanes.min(super::protocol::MAX_LANES) };
    #[cfg(target_os = "linux")]
    let mut rings = |first: RawFd| -> Result<(OwnedFd, shm::Bells), LaunchError> {
        let (memfd, bells, child_bells) = shm::create().map_err(setup(Step::SharedMemory))?;
        let shared =
            [&memfd, &child_bells.host_data, &child_bells.host_room, &child_bells.child_data, &child_bells.child_room];
        for (fd, to) in shared.into_iter().zip(first..) {
            pass.push((launch::above(fd.as_fd())?, to));
        }
        readers.extend([child_bells.child_data, child_bells.child_room]);
        Ok((memfd, bells))
    };
    #[cfg(target_os = "linux")]
    const _: () = assert!(BELL_FDS[0] == SHM_FD + 1 && BELL_FDS[3] == SHM_FD + 4 && LANE_FDS == 2);
    #[cfg(target_os = "linux")]
    let shared = if socket_only { None } else { Some(rings(SHM_FD)?) };
    // Each lane: its memory, then the child's end of its bell (a socketpair).
    #[cfg(target_os = "linux")]
    let lanes = (0..lanes)
        .map(|i| {
            let (memfd, bell, child_bell) = shm::create_lane().map_err(setup(Step::SharedMemory))?;
            let first = LANE_FD + LANE_FDS * i as RawFd;
            pass.push((launch::above(memfd.as_fd())?, first));
            pass.push((launch::above(child_bell.as_fd())?, first + 1));
            Ok((memfd, bell))
        })
        .collect::<Result<Vec<_>, LaunchError>>()?;
    #[cfg(target_os = "linux")]
    let last_fd = if socket_only { NUDGE_FD } else { LAST_FD + LANE_FDS * lanes.len() as RawFd };
    #[cfg(not(target_os = "linux"))]
    let last_fd = {
        let _ = (socket_only, lanes);
        NUDGE_FD
    };
    steps::mark("host: socket, nudge pipe, rings made");
    // (Not kept where a write to a pipe without readers cannot kill the host.)
    if launch::sigpipe_ignored() {
        readers.clear();
    }
    #[cfg(target_os = "linux")]
    let ends = Ends { socket: host_end, nudge, readers, shared, lanes };
    #[cfg(not(target_os = "linux"))]
    let ends = Ends { socket: host_end, nudge, readers };
    Ok((ends, (pass, last_fd)))
}

/// The variables of the host's own that a runner gets: its socket's number, the
/// host's pid, the largest frame, whether frames stay on the socket, whether it is a
/// spare runner, whether it writes step times, how many lanes it has.
pub(crate) fn child_env(max_frame: usize, socket_only: bool, lanes: usize, spare: bool) -> Vec<(&'static str, String)> {
    #[cfg(target_os = "linux")]
    let lanes = (!socket_only && lanes > 0).then(|| (LANES_VAR, lanes.min(super::protocol::MAX_LANES).to_string()));
    #[cfg(not(target_os = "linux"))]
    let lanes = {
        let _ = lanes;
        None
    };
    vec![
        (FD_VAR, CHILD_FD.to_string()),
        (PARENT_VAR, std::process::id().to_string()),
        (MAX_FRAME_VAR, max_frame.to_string()),
    ]
    .into_iter()
    .chain(socket_only.then(|| (protocol::SOCKET_VAR, "1".to_owned())))
    .chain(spare.then(|| (protocol::SPARE_VAR, "1".to_owned())))
    .chain(steps::enabled().then(|| (steps::STEPS_VAR, "1".to_owned())))
    .chain(lanes)
    .collect()
}

impl Ends {
    /// The channel's link (the shared memory mapped, sending a call waiting for room no
    /// longer than `deadline`), the lanes (mapped, not used yet: see [`Linked::lanes`]), the nudge's
    /// write end, and the readers to keep.
    pub(crate) fn link(self, deadline: Duration) -> Result<Linked, LaunchError> {
        #[cfg(target_os = "linux")]
        let (link, lanes) = match self.shared {
            None => (Link::Socket(self.socket), Vec::new()),
            Some((memfd, bells)) => {
                let socket = std::sync::Arc::new(self.socket);
                let mapped = |shared: std::io::Result<shm::Shared>| {
                    shared.map(Link::Rings).map_err(|source| LaunchError::Setup { step: Step::MapSharedMemory, source })
                };
                // (Mapped, not touched: the host starts at its own zero, see
                // `shm::Shared::with`, and closes each memfd once mapped.)
                let lanes = self
                    .lanes
                    .into_iter()
                    .map(|(memfd, bell)| {
                        mapped(shm::Shared::lane(memfd, bell, true, std::sync::Arc::clone(&socket), Some(deadline)))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (mapped(shm::Shared::new(memfd, bells, true, socket, Some(deadline)))?, lanes)
            }
        };
        #[cfg(not(target_os = "linux"))]
        let (link, lanes) = {
            let _ = deadline;
            (Link::Socket(self.socket), Vec::new())
        };
        Ok(Linked { link, lanes, nudge: self.nudge, readers: self.readers })
    }
}

/// A child's channel, linked (see [`Ends::link`]).
pub(crate) struct Linked {
    /// The main rings (or the socket).
    pub(crate) link: Link,
    /// The host's end of each lane, mapped (its memory not touched) but not read by
    /// anyone until the child starts the lanes when the host asks (see
    /// `Isolated::start_lanes`): a process whose calls never overlap pays for no
    /// thread and no page of them.
    pub(crate) lanes: Vec<Link>,
    /// The write end of the nudge pipe.
    pub(crate) nudge: OwnedFd,
    /// The readers to keep (see `Connection::_readers`).
    pub(crate) readers: Vec<OwnedFd>,
}
