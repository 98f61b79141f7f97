//! One isolated call's round trip next to an in-process call, on any platform that
//! isolates — written for Windows (run under Wine by `.ci/windows`), where the
//! `isolation` bench (Unix sockets, `/proc`) does not build. Also a floor: the same
//! bytes ping-ponged between two threads of this process through two anonymous pipes
//! (what the Windows transport is made of), blocking reads.
//!
//! Run: `cargo bench -p tomada-host --bench round_trip` (on Linux the isolated call
//! goes through the shared rings, and the floor is still two pipes).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use pluginapi::Greeter;
use tomada_host::isolate::{Isolation, Mode, Runner};

const CALLS: usize = 5_000;
const ROUNDS: usize = 3;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// The p50 and p99 of `CALLS` timed runs of `call`, after a warm-up.
fn measure(mut call: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..CALLS / 10 {
        call();
    }
    let mut samples: Vec<Duration> = (0..CALLS)
        .map(|_| {
            let start = Instant::now();
            call();
            start.elapsed()
        })
        .collect();
    samples.sort();
    (percentile(&samples, 0.5), percentile(&samples, 0.99))
}

fn main() {
    // `cargo bench` passes `--bench`; a filter is not supported (three cases).
    let path = tomada_test_support::cdylib("greeter");
    let local = tomada_host::load_with::<dyn Greeter>(&path, &Mode::InProcess).unwrap();
    let runner = Runner::Path(env!("CARGO_BIN_EXE_tomada-runner").into());
    let isolated =
        tomada_host::load_with::<dyn Greeter>(&path, &Mode::Isolated(Isolation::new().runner(runner))).unwrap();
    assert_eq!(isolated.greet("Mundo").unwrap(), local.greet("Mundo").unwrap());

    // The floor: 64 bytes out and back through two pipes, to a thread that echoes.
    let (mut there_in, mut here_out) = std::io::pipe().unwrap();
    let (mut here_in, mut there_out) = std::io::pipe().unwrap();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while there_in.read_exact(&mut buf).is_ok() {
            if there_out.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let mut ping = [7u8; 64];

    println!("{:<36} {:>10} {:>10}  ratio p50 (to in-process)", "case", "p50", "p99");
    for round in 1..=ROUNDS {
        let in_process = measure(|| drop(std::hint::black_box(local.greet("Mundo").unwrap())));
        let across = measure(|| drop(std::hint::black_box(isolated.greet("Mundo").unwrap())));
        let pipes = measure(|| {
            here_out.write_all(&ping).unwrap();
            here_in.read_exact(&mut ping).unwrap();
        });
        let row = |name: &str, (p50, p99): (Duration, Duration)| {
            let ratio = p50.as_secs_f64() / in_process.0.as_secs_f64();
            println!("{name:<36} {p50:>10.2?} {p99:>10.2?}  {ratio:.0}x");
        };
        println!("round {round} ({}, {CALLS} calls each)", std::env::consts::OS);
        row("in-process greet", in_process);
        row("isolated greet", across);
        row("pipe ping-pong, two threads (floor)", pipes);
        println!("isolated ÷ pipe floor: {:.2}x", across.0.as_secs_f64() / pipes.0.as_secs_f64());
    }
    drop(here_out);
    let _ = echo.join();
}
