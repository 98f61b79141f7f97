//! A contract whose plugin (`tests/plugins/faulty`) does, on request, every bad thing
//! an isolated plugin must survive, and tries what a sandbox must stop.

/// Misbehaviour on request.
#[tomada::contract(abi = 1)]
pub trait Faulty {
    /// Returns `s` unchanged: proves the plugin works.
    fn echo(&self, s: &str) -> String;
    /// The plugin's process id.
    fn pid(&self) -> u32;
    /// Prints `line` to stdout and `line` + " (stderr)" to stderr.
    fn print(&self, line: &str);
    /// Panics with `message`.
    fn panic(&self, message: &str) -> u8;
    /// Calls `std::process::abort()`.
    fn abort(&self);
    /// Writes through a null pointer.
    fn segfault(&self);
    /// Calls `std::process::exit(code)`.
    fn exit(&self, code: i32);
    /// Never returns.
    fn hang(&self);
    /// Allocates (and touches) 1 MiB blocks until it can no more; returns how many
    /// it got, if it ever returns.
    fn allocate(&self) -> u64;
    /// Closes file descriptor 3 (the isolation runner's socket).
    fn close_socket(&self);
    /// Writes garbage to file descriptor 3, then never returns.
    fn corrupt_channel(&self);
    /// Opens a TCP socket and binds it to 127.0.0.1:0.
    fn try_network(&self) -> Result<String, String>;
    /// Creates and writes the file `path`.
    fn try_write(&self, path: &str) -> Result<String, String>;
    /// Runs `/bin/true`.
    fn try_exec(&self) -> Result<String, String>;
    /// Closes file descriptor 3, then never returns.
    fn close_socket_then_hang(&self);
    /// Starts `sleep SECONDS` in a session of its own (out of the plugin's process
    /// group), inheriting whatever the plugin's process lets it inherit.
    fn spawn_detached_sleeper(&self, seconds: u32) -> u32;
    /// The plugin process's open file descriptors, from `/proc/self/fd`.
    fn open_fds(&self) -> Vec<u8>;
    /// Writes `bytes` to stdout as they are, then a newline.
    fn print_bytes(&self, bytes: &[u8]);
    /// Burns CPU without end.
    fn burn(&self);
    /// Opens `/dev/null` `count` times and keeps them open; returns how many it got,
    /// or the error that stopped it.
    fn open_files(&self, count: u64) -> Result<u64, String>;
    /// Sleeps `ms` milliseconds, then returns how many calls of `sleep_ms` were
    /// inside the plugin at once, at most, so far.
    fn sleep_ms(&self, ms: u64) -> u32;
    /// Waits until `count` calls of `meet` (counted since the instance was made)
    /// arrived, all still inside the plugin (true), or until 25 s passed (false):
    /// calls served one at a time never meet.
    fn meet(&self, count: u32) -> bool;
    /// How many calls of `sleep_ms` are inside the plugin now.
    fn sleeping(&self) -> u32;
}
