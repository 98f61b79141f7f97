//! Remote calls over loopback, each next to a floor measured in the same run: a bare
//! `rustls` request/response round trip of the same bytes, TLS 1.3 with the same
//! pinned-key configurations, blocking `StreamOwned` on both ends.
//!
//! - one call at a time: p50/p99 of a remote `echo` of 64 bytes vs the bare round trip
//!   (and the same plugin isolated, for scale);
//! - 64 threads calling at once: throughput of one remote plugin (one connection, its
//!   calls multiplexed) vs 64 bare connections each with its own server thread.
//!
//! The server is `tomada_host::remote::Server` (what `tomada serve` runs) in a thread
//! of this process; each plugin's process is the `tomada-runner` binary.
//! Run: `cargo bench -p tomada-host --bench remote`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use fault_api::Faulty;
use tomada_host::Plugin;
use tomada_host::isolate::{Isolation, Mode, Runner};
use tomada_host::remote::{__bench, Identity, Remote, Server};

const CALLS: usize = 10_000;
const BYTES: usize = 64;
const THREADS: usize = 64;
const PER_THREAD: usize = 300;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn runner() -> Isolation {
    Isolation::new().runner(Runner::Path(env!("CARGO_BIN_EXE_tomada-runner").into()))
}

/// Times `CALLS` calls of `f` (after warming up); sorted.
fn samples(mut f: impl FnMut()) -> Vec<Duration> {
    for _ in 0..500 {
        f();
    }
    let mut all: Vec<Duration> = (0..CALLS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    all.sort();
    all
}

/// A bare TLS echo server: each connection in its own thread, length-prefixed messages.
fn bare_server(config: Arc<rustls::ServerConfig>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let tcp = tcp.unwrap();
            tcp.set_nodelay(true).unwrap();
            let config = Arc::clone(&config);
            std::thread::spawn(move || {
                let mut tls = rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), tcp);
                let mut buf = Vec::new();
                loop {
                    let mut len = [0u8; 4];
                    if tls.read_exact(&mut len).is_err() {
                        return;
                    }
                    buf.resize(u32::from_le_bytes(len) as usize, 0);
                    tls.read_exact(&mut buf).unwrap();
                    tls.write_all(&len).unwrap();
                    tls.write_all(&buf).unwrap();
                    tls.flush().unwrap();
                }
            });
        }
    });
    address
}

type Bare = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn bare_client(config: &Arc<rustls::ClientConfig>, address: std::net::SocketAddr) -> Bare {
    let tcp = TcpStream::connect(address).unwrap();
    tcp.set_nodelay(true).unwrap();
    rustls::StreamOwned::new(rustls::ClientConnection::new(Arc::clone(config), __bench::server_name()).unwrap(), tcp)
}

fn bare_round_trip(tls: &mut Bare, message: &[u8], back: &mut Vec<u8>) {
    // One write: the length and the bytes in one TLS record, as a frame is.
    let mut out = Vec::with_capacity(4 + message.len());
    out.extend_from_slice(&(message.len() as u32).to_le_bytes());
    out.extend_from_slice(message);
    tls.write_all(&out).unwrap();
    tls.flush().unwrap();
    let mut len = [0u8; 4];
    tls.read_exact(&mut len).unwrap();
    back.resize(u32::from_le_bytes(len) as usize, 0);
    tls.read_exact(back).unwrap();
}

fn main() {
    let plugin_path = tomada_test_support::cdylib("faulty");
    let name = plugin_path.file_name().unwrap().to_string_lossy().into_owned();
    let (server_key, client_key) = (Identity::generate().unwrap(), Identity::generate().unwrap());
    let server = Server::bind(
        "127.0.0.1:0",
        &server_key,
        &[client_key.id()],
        &tomada_host::Loader::new(),
        std::slice::from_ref(&plugin_path),
        runner(),
    )
    .unwrap();
    let address = server.local_addr().unwrap().to_string();
    std::thread::spawn(move || server.run());
    let remote = Remote::new(client_key.clone()).endpoint(&address).trust_server(server_key.id());
    let plugin: Plugin<dyn Faulty> = tomada_host::load_with(&name, &Mode::Remote(remote)).unwrap();
    let isolated: Plugin<dyn Faulty> = tomada_host::load_with(&plugin_path, &Mode::Isolated(runner())).unwrap();

    let (server_config, client_config) = __bench::configs(&server_key, &client_key).unwrap();
    let bare_address = bare_server(server_config);
    let message = "x".repeat(BYTES);

    println!("# one call at a time: {BYTES}-byte echo, {CALLS} calls");
    let mut bare = bare_client(&client_config, bare_address);
    let mut back = Vec::new();
    let floor = samples(|| bare_round_trip(&mut bare, message.as_bytes(), &mut back));
    let remote_s = samples(|| {
        plugin.echo(&message).unwrap();
    });
    let isolated_s = samples(|| {
        isolated.echo(&message).unwrap();
    });
    let row = |what: &str, s: &[Duration]| {
        println!(
            "{what:<34} p50 {:>9.2?}  p99 {:>9.2?}  ratio p50 {:.2}x",
            percentile(s, 0.5),
            percentile(s, 0.99),
            percentile(s, 0.5).as_secs_f64() / percentile(&floor, 0.5).as_secs_f64()
        );
    };
    row("bare rustls round trip (floor)", &floor);
    row("remote call", &remote_s);
    row("isolated call (same machine)", &isolated_s);

    println!("# {THREADS} threads at once, {PER_THREAD} calls each");
    let bare_rate = {
        let barrier = Arc::new(Barrier::new(THREADS + 1));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (barrier, config, message) = (Arc::clone(&barrier), Arc::clone(&client_config), message.clone());
                std::thread::spawn(move || {
                    let mut tls = bare_client(&config, bare_address);
                    let mut back = Vec::new();
                    bare_round_trip(&mut tls, message.as_bytes(), &mut back);
                    barrier.wait();
                    for _ in 0..PER_THREAD {
                        bare_round_trip(&mut tls, message.as_bytes(), &mut back);
                    }
                })
            })
            .collect();
        barrier.wait();
        let t = Instant::now();
        threads.into_iter().for_each(|t| t.join().unwrap());
        (THREADS * PER_THREAD) as f64 / t.elapsed().as_secs_f64()
    };
    let plugin = Arc::new(plugin);
    let remote_rate = {
        let barrier = Arc::new(Barrier::new(THREADS + 1));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (barrier, plugin, message) = (Arc::clone(&barrier), Arc::clone(&plugin), message.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..PER_THREAD {
                        plugin.echo(&message).unwrap();
                    }
                })
            })
            .collect();
        barrier.wait();
        let t = Instant::now();
        threads.into_iter().for_each(|t| t.join().unwrap());
        (THREADS * PER_THREAD) as f64 / t.elapsed().as_secs_f64()
    };
    println!("bare rustls, {THREADS} connections (floor)  {bare_rate:>9.0} calls/s");
    println!(
        "remote, one plugin, {THREADS} threads      {remote_rate:>9.0} calls/s  ratio {:.2}x",
        remote_rate / bare_rate
    );
    std::process::exit(0);
}
