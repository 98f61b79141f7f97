//! Plugins on another machine: the real `tomada serve` process on 127.0.0.1, this
//! test process as the host (`Mode::Remote`), real fixture plugins. What only remote
//! plugins have: keys refused both ways during the handshake, a full server, several
//! endpoints, deadlines, a server killed mid-call and a restarted one serving the next
//! call, crashes on the server, lost packets and cut links, listener caps, log records.
//! (Types, objects, callbacks, async calls, panics and errors, the same in every mode,
//! are the conformance suite's: `crates/host/tests/conformance.rs`, which runs them
//! remote too, against the library's server in its test process.)

#![allow(missing_docs)]
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fault_api::Faulty;
use indexer_api::{Host, Indexer, Level};
use tomada_host::isolate::Mode;
use tomada_host::remote::{Identity, KeyId, Remote};
use tomada_host::{CallError, LoadError, Plugin};
use tomada_test_support::{cdylib, within};

/// A `tomada serve` process, killed when dropped.
struct Server {
    child: Child,
    address: String,
    key: KeyId,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Keys written to a temporary directory: the server's, and the one client key it allows.
struct Keys {
    dir: tempfile::TempDir,
    server: Identity,
    client: Identity,
}

impl Keys {
    fn new() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        let server = Identity::generate().unwrap();
        std::fs::write(dir.path().join("server.key"), server.to_pem()).unwrap();
        Keys { dir, server, client: Identity::generate().unwrap() }
    }

    fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
}

/// The plugins the servers serve.
fn plugins() -> Vec<PathBuf> {
    vec![cdylib("greeter"), cdylib("faulty"), cdylib("indexer"), cdylib("async-plugin")]
}

/// Starts `tomada serve` on `address` (port 0: any), allowing `allowed`; returns once it
/// listens (it prints its address first).
fn serve(keys: &Keys, address: &str, allowed: &KeyId) -> Server {
    serve_with(keys, address, allowed, &[])
}

/// [`serve`] with more options.
fn serve_with(keys: &Keys, address: &str, allowed: &KeyId, more: &[&str]) -> Server {
    serve_to(keys, address, allowed, more, Stdio::inherit())
}

/// [`serve_with`], its stderr (its log) going to `stderr`.
fn serve_to(keys: &Keys, address: &str, allowed: &KeyId, more: &[&str], stderr: Stdio) -> Server {
    let mut args: Vec<std::ffi::OsString> = vec![
        "serve".into(),
        "--listen".into(),
        address.into(),
        "--key".into(),
        keys.server_key().into(),
        "--allow".into(),
        allowed.to_string().into(),
    ];
    args.extend(more.iter().map(Into::into));
    args.extend(plugins().into_iter().map(Into::into));
    let mut child = Command::new(env!("CARGO_BIN_EXE_tomada"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("run tomada serve");
    let stdout = child.stdout.take().unwrap();
    let line = within("the server's first line", move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    });
    let address = line
        .strip_prefix("listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    Server { child, address, key: keys.server.id() }
}

fn remote(keys: &Keys, server: &Server) -> Remote {
    Remote::new(keys.client.clone()).endpoint(&server.address).trust_server(server.key)
}

fn load<C: ?Sized + tomada_host::Contract>(name: &str, remote: Remote) -> Result<Plugin<C>, LoadError> {
    tomada_host::load_with::<C>(name, &Mode::Remote(remote))
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn greeter_name() -> String {
    file_name(&cdylib("greeter"))
}

fn faulty_name() -> String {
    file_name(&cdylib("faulty"))
}

#[test]
fn a_remote_plugin_is_called_like_an_isolated_one() {
    let keys = Keys::new();
    let server = serve(&keys, "127.0.0.1:0", &keys.client.id());
    let greeter = load::<dyn pluginapi::Greeter>(&greeter_name(), remote(&keys, &server)).unwrap();
    assert_eq!(greeter.greet("Mundo").unwrap(), "Olá, Mundo 👋");
    assert_eq!(greeter.info().name, "greeter");
    let faulty = load::<dyn Faulty>(&faulty_name(), remote(&keys, &server)).unwrap();
    assert_eq!(faulty.echo("eco").unwrap(), "eco");
    // Large arguments cross whole (several TLS records).
    let big = "x".repeat(1 << 20);
    assert_eq!(faulty.echo(&big).unwrap().len(), big.len());
    // The plugin runs in its own process on the server, not in this one.
    assert_ne!(faulty.pid().unwrap(), std::process::id());
    assert_eq!(faulty.process_id(), None);
    // A panic is the plugin's, and the connection stays.
    assert!(matches!(faulty.panic("no luck"), Err(CallError::Panicked { .. })));
    assert_eq!(faulty.echo("again").unwrap(), "again");
}

/// A host service that records what the plugin logs through it.
#[derive(Default)]
struct Recorder(Mutex<Vec<(Level, String)>>);

impl Host for Recorder {
    fn log(&self, level: Level, message: &str) {
        self.0.lock().unwrap().push((level, message.to_owned()));
    }
    fn config(&self, key: &str) -> Option<String> {
        (key == "lowercase").then(|| "yes".to_owned())
    }
}

/// An async call takes the deadline of the scope it is made in, wherever it is polled:
/// the plugin's sleep outlasts it (and the hang guard). (The async cases that every
/// mode shares are in tomada-host's conformance suite.)
#[test]
fn an_async_call_keeps_the_deadline_of_the_scope_it_was_made_in() {
    let keys = Keys::new();
    let server = serve(&keys, "127.0.0.1:0", &keys.client.id());
    let lookup = load::<dyn async_api::Lookup>(&file_name(&cdylib("async-plugin")), remote(&keys, &server)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let short = Duration::from_millis(300);
    let late = tomada_host::isolate::with_deadline(short, || lookup.fetch("late", 600_000));
    assert_eq!(runtime.block_on(late), Err(CallError::TimedOut { deadline: short }));
    assert_eq!(lookup.plain(2), Ok(4), "the next call reconnects");
}

/// Every `log` record this process sees.
static RECORDS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        RECORDS.lock().unwrap().push((r.target().to_owned(), r.args().to_string()));
    }
    fn flush(&self) {}
}

#[test]
fn a_remote_plugins_log_records_reach_the_hosts_logger() {
    // Before loading: the levels a plugin may send are the host's when it loads.
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    let keys = Keys::new();
    let server = serve(&keys, "127.0.0.1:0", &keys.client.id());
    let indexer = load::<dyn Indexer>(&file_name(&cdylib("indexer")), remote(&keys, &server)).unwrap();
    assert_eq!(indexer.index("one two", &Recorder::default()), Ok(2));
    // (Records come on the connection beside the answer: they may trail it a little.)
    tomada_test_support::wait_until("the plugin's record", || {
        RECORDS.lock().unwrap().iter().any(|(_, message)| message == "indexed 2 words")
    });
    // Its trace record stayed in the plugin: this host's level is `Info`.
    assert!(!RECORDS.lock().unwrap().iter().any(|(_, message)| message == "a trace record"));
}

#[test]
fn a_client_with_a_key_the_server_does_not_allow_is_refused_in_the_handshake() {
    let keys = Keys::new();
    let other = Identity::generate().unwrap();
    // The server allows someone else.
    let server = serve(&keys, "127.0.0.1:0", &other.id());
    let err = load::<dyn pluginapi::Greeter>(&greeter_name(), remote(&keys, &server)).unwrap_err();
    let LoadError::Unavailable { detail, .. } = &err else { panic!("{err:?}") };
    assert!(detail.contains("does not accept this host's key"), "{detail}");
    // The allowed key still gets in.
    let allowed = Remote::new(other).endpoint(&server.address).trust_server(server.key);
    assert!(load::<dyn pluginapi::Greeter>(&greeter_name(), allowed).is_ok());
}

#[test]
fn the_server_logs_each_connection_on_stderr() {
    let keys = Keys::new();
    let mut server = serve_to(&keys, "127.0.0.1:0", &keys.client.id(), &[], Stdio::piped());
    let stderr = BufReader::new(server.child.stderr.take().unwrap());
    let (lines, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            eprintln!("{line}");
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    // A client with a key the server does not allow, and one served.
    let stranger_key = Identity::generate().unwrap();
    let stranger_id = stranger_key.id().to_string();
    let stranger = Remote::new(stranger_key).endpoint(&server.address).trust_server(server.key);
    assert!(load::<dyn pluginapi::Greeter>(&greeter_name(), stranger).is_err());
    drop(load::<dyn pluginapi::Greeter>(&greeter_name(), remote(&keys, &server)).unwrap());
    let seen = within("the server's log of both connections", move || {
        let (mut refused, mut named, mut served) = (false, false, false);
        while !(refused && named && served) {
            let line = log.recv().unwrap();
            refused |= line.contains("WARN tomada::serve: refused: the handshake failed");
            // The refused client's key, for the operator to add to `--allow`.
            named |= line.contains("WARN tomada::remote") && line.contains(&stranger_id);
            served |= line.contains("INFO tomada::serve: client key") && line.contains(&greeter_name());
        }
        (refused, named, served)
    });
    assert_eq!(seen, (true, true, true));
}

#[test]
fn a_server_with_another_key_than_the_host_pins_is_refused() {
    let keys = Keys::new();
    let server = serve(&keys, "127.0.0.1:0", &keys.client.id());
    let impostor = Identity::generate().unwrap().id();
    let pinned_wrong = Remote::new(keys.client.clone()).endpoint(&server.address).trust_server(impostor);
    let err = load::<dyn pluginapi::Greeter>(&greeter_name(), pinned_wrong).unwrap_err();
    let LoadError::Unavailable { detail, .. } = &err else { panic!("{err:?}") };
    assert!(detail.contains("the server's key is not one this host trusts"), "{detail}");
}

#[test]
fn a_full_server_says_so_and_the_call_was_not_sent() {
    let keys = Keys::new();
    let server = serve_with(&keys, "127.0.0.1:0", &keys.client.id(), &["--max-clients", "1"]);
    let first = load::<dyn pluginapi::Greeter>(&greeter_name(), remote(&keys, &server)).unwrap();
    let err = load::<dyn pluginapi::Greeter>(&greeter_name(), remote(&keys, &server)).unwrap_err();
    assert!(matches!(err, LoadError::Overloaded { .. }), "{err:?}");
    // Its client leaving makes room.
    drop(first);
    tomada_test_support::wait_until("room on the server", || {
        load::<dyn pluginapi::Greeter>(&greeter_name(), remote(&keys, &server)).is_ok()
    });
}

#[test]
fn calls_go_to_the_endpoint_that_answers() {
    let keys = Keys::new();
    let server = serve(&keys, "127.0.0.1:0", &keys.client.id());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let remote = Remote::new(keys.client.clone())
        .endpoint(format!("127.0.0.1:{port}")) // nobody listens there
        .endpoint(&server.address)
        .trust_server(server.key);
    let greeter = load::<dyn pluginapi::Greeter>(&greeter_name(), remote).unwrap();
    assert_eq!(greeter.greet("Mundo").unwrap(), "Olá, Mundo 👋");
}

#[test]
fn a_call_past_its_deadline_times_out_and_the_next_reconnects() {
    let keys = Keys::new();
    let server = serve(&keys, "127.0.0.1:0", &keys.client.id());
    // Also the budget of the next call, which reconnects and starts a process on the
    // server: long enough for a busy machine (half a second was not).
    let deadline = Duration::from_secs(10);
    let faulty = load::<dyn Faulty>(&faulty_name(), remote(&keys, &server).deadline(deadline)).unwrap();
    let err = faulty.sleep_ms(60_000).unwrap_err();
    assert_eq!(err, CallError::TimedOut { deadline });
    // A new connection, and with it a new process for the plugin on the server: none
    // of its calls sleeps (the old one's would).
    assert_eq!(faulty.echo("again").unwrap(), "again");
    assert_eq!(faulty.sleeping(), Ok(0));
}

#[test]
fn no_server_listening_is_unavailable() {
    let keys = Keys::new();
    // A port nobody listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let remote = Remote::new(keys.client.clone()).endpoint(format!("127.0.0.1:{port}")).trust_server(keys.server.id());
    let err = load::<dyn pluginapi::Greeter>(&greeter_name(), remote).unwrap_err();
    assert!(matches!(err, LoadError::Unavailable { .. }), "{err:?}");
}

#[test]
fn a_server_killed_mid_call_fails_the_call_and_a_restarted_one_serves_the_next() {
    let keys = Keys::new();
    let mut server = serve(&keys, "127.0.0.1:0", &keys.client.id());
    let address = server.address.clone();
    // The connection's deadline is only a hang guard; the call has one of its own.
    let faulty = Arc::new(
        load::<dyn Faulty>(&faulty_name(), remote(&keys, &server).deadline(tomada_test_support::HANG_GUARD)).unwrap(),
    );
    assert_eq!(faulty.echo("up").unwrap(), "up");
    let calling = Arc::clone(&faulty);
    // Long enough for a busy machine to see the plugin sleep before it passes (if it
    // does not, the call is `TimedOut`, which is also an answer within the bound).
    let call_deadline = Duration::from_secs(20);
    let call = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        let result = tomada_host::isolate::with_deadline(call_deadline, || calling.sleep_ms(600_000));
        (result, started.elapsed())
    });
    // Once the plugin sleeps in the call (asked by a second call, concurrent on the
    // same connection), the server dies.
    tomada_test_support::wait_until("the plugin to be sleeping", || faulty.sleeping() == Ok(1));
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let (result, took) = within("the interrupted call", move || call.join().unwrap());
    match &result {
        Err(CallError::Disconnected { may_have_run: true, .. }) => {}
        Err(CallError::TimedOut { deadline }) => assert_eq!(*deadline, call_deadline, "the call's own deadline"),
        other => panic!("{other:?}"),
    }
    // Whatever the machine's load: an answer within the call's deadline and 100 ms, not
    // the connection's (an upper bound only; how soon after the kill is not asserted).
    assert!(took <= call_deadline + Duration::from_millis(100), "the call took {took:?}");
    // While no server listens, a call says so and was not sent.
    let err = faulty.echo("down").unwrap_err();
    assert!(matches!(err, CallError::Unavailable { .. }), "{err:?}");
    // A server back on the same address serves the next call.
    let _again = serve(&keys, &address, &keys.client.id());
    assert_eq!(faulty.echo("back").unwrap(), "back");
}

/// A TCP relay between the host and the server that cuts each connection, at random,
/// with probability `per_mille`/1000 each time it passes a piece of bytes on: a link
/// that fails mid-call, at any point of a frame. (This kernel has no `netem`, and no
/// `nft` binary is installed for a packet-dropping rule; TCP would retransmit dropped
/// packets anyway, so cut connections are what a caller can actually lose.)
fn lossy_relay(to: String, per_mille: u64) -> String {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let seed = std::sync::atomic::AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let seed = Arc::new(seed);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(&to) else { continue };
            let _ = (client.set_nodelay(true), server.set_nodelay(true));
            for (mut from, mut into) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server.try_clone().unwrap(), client.try_clone().unwrap()),
            ] {
                let seed = Arc::clone(&seed);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        // xorshift: a different cut point each run is fine; every
                        // outcome is checked, whatever the cuts.
                        let mut x = seed.load(std::sync::atomic::Ordering::Relaxed);
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        seed.store(x, std::sync::atomic::Ordering::Relaxed);
                        let cut = x % 1000 < per_mille;
                        // Part of the piece may get through before the cut.
                        let through = if cut { (x as usize >> 20) % (n + 1) } else { n };
                        if into.write_all(&buf[..through]).is_err() || cut {
                            break;
                        }
                    }
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = into.shutdown(Shutdown::Both);
                });
            }
        }
    });
    address
}

#[test]
fn over_a_link_that_fails_mid_call_no_call_is_lost_silently() {
    let keys = Keys::new();
    let server = serve(&keys, "127.0.0.1:0", &keys.client.id());
    let relay = lossy_relay(server.address.clone(), 10);
    let remote = Remote::new(keys.client.clone()).endpoint(&relay).trust_server(server.key);
    // (Loading may meet a cut too: retried, as a caller would.)
    let faulty = (0..50)
        .find_map(|_| load::<dyn Faulty>(&faulty_name(), remote.clone()).ok())
        .expect("the plugin loads within 50 tries");
    let (mut ok, mut disconnected, mut unavailable) = (0, 0, 0);
    let calls = 10_000;
    for i in 0..calls {
        let text = format!("call {i}");
        match faulty.echo(&text) {
            // Whatever arrives is the answer to this very call.
            Ok(echo) => {
                assert_eq!(echo, text);
                ok += 1;
            }
            // Sent, then cut: it may have run, and the error says so.
            Err(CallError::Disconnected { may_have_run: true, .. }) => disconnected += 1,
            // Not sent (the reconnection was cut, or the request's write failed):
            // it did not run.
            Err(CallError::Unavailable { .. } | CallError::Disconnected { may_have_run: false, .. }) => {
                unavailable += 1
            }
            Err(other) => panic!("call {i}: {other:?}"),
        }
    }
    eprintln!("{calls} calls: {ok} answered, {disconnected} disconnected (may have run), {unavailable} not sent");
    assert_eq!(ok + disconnected + unavailable, calls);
    assert!(ok > calls / 2, "{ok} of {calls} answered");
    assert!(disconnected > 0, "the relay cut no call: the test tested nothing");
}

/// The ids of the server process's threads.
fn threads(server: &Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/task", server.child.id())).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn connections_that_never_speak_neither_exhaust_the_server_nor_keep_a_client_out() {
    let keys = Keys::new();
    let server = serve_with(&keys, "127.0.0.1:0", &keys.client.id(), &["--max-opening", "16"]);
    // Far more silent connections than may be in their opening: each accepted one past
    // 16 closes the oldest, so the server's threads stay bounded.
    let silent: Vec<std::net::TcpStream> =
        (0..200).map(|_| std::net::TcpStream::connect(&server.address).unwrap()).collect();
    tomada_test_support::wait_until("the server's threads bounded by --max-opening", || threads(&server) <= 16 + 8);
    // With all of them still open on this side, a real client gets in and is served.
    let greeter = load::<dyn pluginapi::Greeter>(&greeter_name(), remote(&keys, &server)).unwrap();
    assert_eq!(greeter.greet("Mundo").unwrap(), "Olá, Mundo 👋");
    drop(silent);
}

#[test]
fn garbage_instead_of_a_handshake_is_refused_and_others_are_served() {
    use std::io::{Read, Write};
    let keys = Keys::new();
    let server = serve(&keys, "127.0.0.1:0", &keys.client.id());
    let mut garbage = std::net::TcpStream::connect(&server.address).unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\nHost: tomada\r\n\r\n").unwrap();
    garbage.write_all(&[0xff; 4096]).unwrap();
    // The server closes it (perhaps with a TLS alert first): reading ends.
    let mut garbage2 = garbage.try_clone().unwrap();
    within("the server closing the garbage connection", move || {
        let mut sink = Vec::new();
        let _ = garbage2.read_to_end(&mut sink);
    });
    let greeter = load::<dyn pluginapi::Greeter>(&greeter_name(), remote(&keys, &server)).unwrap();
    assert_eq!(greeter.greet("Mundo").unwrap(), "Olá, Mundo 👋");
}

/// Sends `body` as an authenticated client's opening request (length-prefixed), and
/// returns all the server answers.
fn raw_opening(keys: &Keys, server: &Server, body: &'static [u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let (_, config) = tomada_host::remote::__bench::configs(&keys.server, &keys.client).unwrap();
    let tcp = std::net::TcpStream::connect(&server.address).unwrap();
    within("an answer to the opening request", move || {
        let mut tcp = tcp;
        let mut conn = rustls::ClientConnection::new(config, tomada_host::remote::__bench::server_name()).unwrap();
        let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
        tls.write_all(&(body.len() as u32).to_le_bytes()).unwrap();
        tls.write_all(body).unwrap();
        tls.flush().unwrap();
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer);
        answer
    })
}

#[test]
fn an_authenticated_client_with_a_malformed_request_is_refused_and_others_are_served() {
    let keys = Keys::new();
    let server = serve(&keys, "127.0.0.1:0", &keys.client.id());
    // A length-prefixed message that is not an opening request.
    let answer = raw_opening(&keys, &server, b"not a request at all");
    // Its 4-byte length, then the status: 1, refused (a `LoadError` follows).
    assert!(answer.len() > 4, "no answer: {answer:?}");
    assert_eq!(answer[4], 1, "not refused: {answer:?}");
    let greeter = load::<dyn pluginapi::Greeter>(&greeter_name(), remote(&keys, &server)).unwrap();
    assert_eq!(greeter.greet("Mundo").unwrap(), "Olá, Mundo 👋");
}

#[test]
fn a_host_of_another_protocol_version_is_refused_with_both_versions_named() {
    let keys = Keys::new();
    let server = serve(&keys, "127.0.0.1:0", &keys.client.id());
    // Version 1 (postcard: one byte), the opening of hosts before frames carried
    // deadlines; what follows is never read.
    let answer = raw_opening(&keys, &server, b"\x01 an older opening");
    assert_eq!(answer.get(4), Some(&1), "not refused: {answer:?}");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("the host speaks version 1 of the remote protocol"), "{text}");
    assert!(text.contains("this server speaks version "), "{text}");
}

#[test]
fn a_plugin_crashing_on_the_server_is_crashed_on_the_host_with_its_signal() {
    let keys = Keys::new();
    let server = serve(&keys, "127.0.0.1:0", &keys.client.id());
    let faulty = load::<dyn Faulty>(&faulty_name(), remote(&keys, &server)).unwrap();
    match faulty.abort() {
        Err(CallError::Crashed { signal, .. }) => assert_eq!(signal, Some(libc_sigabrt()), "aborted"),
        other => panic!("not a crash: {other:?}"),
    }
    // The next call reconnects, to a new process on the server.
    assert_eq!(faulty.echo("again").unwrap(), "again");
    match faulty.exit(3) {
        Err(CallError::Crashed { exit_code, signal, .. }) => assert_eq!((exit_code, signal), (Some(3), None)),
        other => panic!("not a crash: {other:?}"),
    }
    assert_eq!(faulty.echo("and again").unwrap(), "and again");
}

/// SIGABRT on Linux.
fn libc_sigabrt() -> i32 {
    6
}

#[test]
fn a_request_that_could_not_be_sent_whole_did_not_run() {
    let keys = Keys::new();
    let mut server = serve(&keys, "127.0.0.1:0", &keys.client.id());
    let faulty = load::<dyn Faulty>(&faulty_name(), remote(&keys, &server)).unwrap();
    assert_eq!(faulty.echo("up").unwrap(), "up");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    // Far more than the sockets' buffers hold: its writes fail once the peer's end
    // is gone, before the request's last byte.
    let big = "x".repeat(32 << 20);
    let err = faulty.echo(&big).unwrap_err();
    eprintln!("the unsent call: {err:?}");
    assert!(
        matches!(err, CallError::Disconnected { may_have_run: false, .. } | CallError::Unavailable { .. }),
        "{err:?}"
    );
}

/// A TCP relay that never passes a host's close on: when the host's side ends, the
/// server's side stays open and silent, as if the host vanished (a partition, a
/// machine gone). Each time a server closes its side, the receiver hears of it.
fn half_open_relay(to: String) -> (String, std::sync::mpsc::Receiver<()>) {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (closed, heard) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for host in listener.incoming() {
            let Ok(mut host) = host else { return };
            let Ok(mut server) = TcpStream::connect(&to) else { continue };
            let (mut host_back, mut server_back) = (host.try_clone().unwrap(), server.try_clone().unwrap());
            let closed = closed.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                // The host's bytes go on; its end does not (the server's side stays open).
                while let Ok(n @ 1..) = host.read(&mut buf) {
                    if server.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                // (`server` is kept open here until the server closes it.)
                let mut sink = [0u8; 1024];
                while let Ok(1..) = server.read(&mut sink) {}
            });
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n @ 1..) = server_back.read(&mut buf) {
                    let _ = host_back.write_all(&buf[..n]);
                }
                let _ = closed.send(());
            });
        }
    });
    (address, heard)
}

#[test]
fn the_server_ends_a_call_past_its_deadline_when_the_host_is_gone() {
    let keys = Keys::new();
    let server = serve(&keys, "127.0.0.1:0", &keys.client.id());
    let (relay, server_closed) = half_open_relay(server.address.clone());
    let deadline = Duration::from_millis(500);
    let remote = Remote::new(keys.client.clone()).endpoint(&relay).trust_server(server.key).deadline(deadline);
    let faulty = load::<dyn Faulty>(&faulty_name(), remote).unwrap();
    assert_eq!(faulty.echo("up").unwrap(), "up");
    // The host gives up at its deadline and closes its connection, which never reaches
    // the server: only the server's own deadline can end the sleeping call.
    assert_eq!(faulty.sleep_ms(60_000).unwrap_err(), CallError::TimedOut { deadline });
    // The server ends the plugin's process and closes the connection by itself.
    within("the server closing the connection of a call past its deadline", move || server_closed.recv().unwrap());
}

#[test]
fn a_calls_own_deadline_shorter_than_the_connections_applies_on_both_sides() {
    use tomada_host::isolate::with_deadline;
    let keys = Keys::new();
    let server = serve(&keys, "127.0.0.1:0", &keys.client.id());
    // The connection's deadline is far past the hang guard: only the call's own can
    // end these calls in time.
    let long = 4 * tomada_test_support::HANG_GUARD;
    let faulty = Arc::new(load::<dyn Faulty>(&faulty_name(), remote(&keys, &server).deadline(long)).unwrap());
    let short = Duration::from_millis(300);
    let calling = Arc::clone(&faulty);
    let err = within_guard(move || with_deadline(short, || calling.sleep_ms(600_000)));
    assert_eq!(err, Err(CallError::TimedOut { deadline: short }));
    // The next call reconnects, to a new process: none of its calls sleeps.
    assert_eq!(faulty.echo("again").unwrap(), "again");
    assert_eq!(faulty.sleeping(), Ok(0));
    // A scope's time already spent: the call is not sent, and nothing is ended.
    let spent = with_deadline(Duration::ZERO, || faulty.echo("never"));
    assert_eq!(spent, Err(CallError::TimedOut { deadline: Duration::ZERO }));
    assert_eq!(faulty.echo("still").unwrap(), "still");

    // The server enforces the call's deadline too, not the connection's: through a
    // relay that never passes the host's close on, only the server can end the call,
    // and it does so by the call's own deadline (the connection's is past the guard).
    let (relay, server_closed) = half_open_relay(server.address.clone());
    let remote = Remote::new(keys.client.clone()).endpoint(&relay).trust_server(server.key).deadline(long);
    let faulty = load::<dyn Faulty>(&faulty_name(), remote).unwrap();
    let half_second = Duration::from_millis(500);
    let err = within_guard(move || with_deadline(half_second, || faulty.sleep_ms(600_000)));
    assert_eq!(err, Err(CallError::TimedOut { deadline: half_second }));
    within("the server ending the call by its own deadline", move || server_closed.recv().unwrap());
}

/// Runs `f` within the hang guard (no call of these tests may hang the suite).
fn within_guard<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    within("a call with a deadline of its own", f)
}

/// Whether `server` holds connections: one thread each, beyond its `idle` ones.
fn holds_more_than(server: &Server, idle: usize) -> bool {
    threads(server) > idle
}

#[test]
fn connections_spread_over_the_endpoints_and_move_off_a_dead_one() {
    let keys = Keys::new();
    let mut a = serve(&keys, "127.0.0.1:0", &keys.client.id());
    let b = serve(&keys, "127.0.0.1:0", &keys.client.id());
    let (idle_a, idle_b) = (threads(&a), threads(&b));
    let remote = Remote::new(keys.client.clone()).endpoint(&a.address).endpoint(&b.address).trust_server(a.key);
    // Plugins loaded through one `Remote` take the endpoints in turn.
    let plugins: Vec<Plugin<dyn Faulty>> =
        (0..4).map(|_| load::<dyn Faulty>(&faulty_name(), remote.clone()).unwrap()).collect();
    let indexer = load::<dyn Indexer>(&file_name(&cdylib("indexer")), remote.clone()).unwrap();
    assert!(holds_more_than(&a, idle_a) && holds_more_than(&b, idle_b), "both servers serve some");
    indexer.index("apple avocado", &Recorder::default()).unwrap();
    let cursor = indexer.open("a").unwrap();
    assert_eq!(cursor.next(), Ok(Some("apple".into())));
    // One server dies: calls on its connections fail once, then go to the live one.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    for (i, p) in plugins.iter().enumerate() {
        match p.echo("first") {
            Ok(echo) => assert_eq!(echo, "first"),
            Err(CallError::Disconnected { .. }) => {}
            Err(other) => panic!("plugin {i}: {other:?}"),
        }
        assert_eq!(p.echo("then").unwrap(), "then", "plugin {i} moved to the live server");
    }
    // The fifth connection took the first endpoint again (its turn): the indexer and
    // its cursor were on the dead server. The cursor's next call finds its connection
    // gone; the plugin itself goes on on the live server, a fresh instance...
    assert!(matches!(cursor.next(), Err(CallError::Disconnected { .. })));
    assert_eq!(indexer.index("banana", &Recorder::default()), Ok(1), "the plugin is served again");
    // ...and the cursor stays with its old connection, saying so: it is not sent.
    let err = cursor.next().unwrap_err();
    assert!(
        matches!(&err, CallError::Disconnected { may_have_run: false, detail } if detail.contains("objects do not move")),
        "{err:?}"
    );
}

#[test]
fn an_endpoint_that_failed_is_tried_last_until_its_retry_time() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let keys = Keys::new();
    let server = serve(&keys, "127.0.0.1:0", &keys.client.id());
    // An endpoint that takes connections and drops them at once, counting them.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_address = dead.local_addr().unwrap().to_string();
    let knocks = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&knocks);
    std::thread::spawn(move || {
        for tcp in dead.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(tcp);
        }
    });
    let remote = Remote::new(keys.client.clone())
        .endpoint(&dead_address)
        .endpoint(&server.address)
        .trust_server(server.key)
        .retry_after(Duration::from_secs(3600))
        .crash_budget(100, Duration::from_secs(60));
    // The first connection starts at the dead endpoint (its turn), then takes the live one.
    let faulty = load::<dyn Faulty>(&faulty_name(), remote).unwrap();
    assert_eq!(knocks.load(Ordering::SeqCst), 1, "the dead endpoint was tried first");
    // Each crash makes the next call reconnect, each time starting at the next
    // endpoint in turn: the dead one's turns skip it (it failed an hour ago, as far as
    // its retry time goes).
    for i in 0..4 {
        assert!(matches!(faulty.exit(3), Err(CallError::Crashed { .. })), "crash {i}");
        assert_eq!(faulty.echo("back").unwrap(), "back");
    }
    assert_eq!(knocks.load(Ordering::SeqCst), 1, "the dead endpoint was not tried again");
}

#[test]
fn crashes_on_the_server_count_towards_quarantine() {
    let keys = Keys::new();
    let server = serve(&keys, "127.0.0.1:0", &keys.client.id());
    let remote = remote(&keys, &server).crash_budget(2, Duration::from_secs(3600));
    let faulty = load::<dyn Faulty>(&faulty_name(), remote).unwrap();
    assert!(matches!(faulty.abort(), Err(CallError::Crashed { .. })));
    assert_eq!(faulty.echo("once").unwrap(), "once");
    match faulty.abort() {
        Err(CallError::Crashed { detail, .. }) => assert!(detail.contains("it is not restarted"), "{detail}"),
        other => panic!("not a crash: {other:?}"),
    }
    assert_eq!(faulty.echo("no more"), Err(CallError::Quarantined { crashes: 2, window: Duration::from_secs(3600) }));
}

/// Runs `program args` (in this thread's network namespace), or says why not.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program).args(args).output().map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// Moves this thread into a network namespace of its own with only loopback up, on
/// which nftables drops 1 % of the packets sent (`numgen random`); processes it
/// starts are in it too. Says why not if it cannot (not root, no `nft`).
fn lossy_namespace() -> Result<(), String> {
    // SAFETY: `unshare` takes a flag; it moves only this thread (a network namespace
    // is per thread), which the caller spawned for this.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!("cannot make a network namespace: {}", std::io::Error::last_os_error()));
    }
    run("ip", &["link", "set", "lo", "up"])?;
    run("nft", &["add", "table", "inet", "loss"])?;
    run("nft", &["add", "chain", "inet", "loss", "out", "{ type filter hook output priority 0; }"])?;
    run(
        "nft",
        &[
            "add", "rule", "inet", "loss", "out", "oif", "lo", "numgen", "random", "mod", "100", "<", "1", "counter",
            "drop",
        ],
    )
}

/// How many packets the namespace's rule dropped so far.
fn dropped() -> u64 {
    let out = Command::new("nft").args(["list", "table", "inet", "loss"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let packets = text.split("packets ").nth(1).and_then(|rest| rest.split_whitespace().next());
    packets.and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no counter in {text}"))
}

#[test]
fn with_one_packet_in_a_hundred_dropped_no_call_is_lost_silently() {
    // SAFETY: `geteuid` reads the caller's id.
    if unsafe { libc::geteuid() } != 0 || run("nft", &["--version"]).is_err() {
        eprintln!("skipped: dropping packets needs root (a network namespace) and `nft` (apt-get install nftables)");
        return;
    }
    // A thread of its own: the namespace is this thread's, and the server's.
    let counts = std::thread::spawn(|| {
        lossy_namespace().expect("a lossy network namespace");
        let keys = Keys::new();
        let server = serve(&keys, "127.0.0.1:0", &keys.client.id());
        let remote = remote(&keys, &server).deadline(Duration::from_secs(10));
        let faulty = (0..50)
            .find_map(|_| load::<dyn Faulty>(&faulty_name(), remote.clone()).ok())
            .expect("the plugin loads within 50 tries");
        let (mut ok, mut may_have_run, mut not_run) = (0u32, 0u32, 0u32);
        for i in 0..10_000 {
            let text = format!("call {i}");
            match faulty.echo(&text) {
                Ok(echo) => {
                    assert_eq!(echo, text, "another call's answer");
                    ok += 1;
                }
                Err(CallError::Disconnected { may_have_run: true, .. } | CallError::TimedOut { .. }) => {
                    may_have_run += 1
                }
                Err(CallError::Disconnected { may_have_run: false, .. } | CallError::Unavailable { .. }) => {
                    not_run += 1
                }
                Err(other) => panic!("call {i}: {other:?}"),
            }
        }
        (ok, may_have_run, not_run, dropped())
    })
    .join()
    .unwrap();
    let (ok, may_have_run, not_run, dropped) = counts;
    eprintln!(
        "10000 calls, 1 % of packets dropped ({dropped}): {ok} answered, {may_have_run} may have run, {not_run} did not run"
    );
    assert_eq!(ok + may_have_run + not_run, 10_000, "a call was lost");
    assert!(dropped > 0, "no packet was dropped: the test tested nothing");
}
