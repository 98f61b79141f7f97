//! `host --watch`, run as a user would: the seed's two lines, then the log line and
//! greeting of each new build as the plugin's file is replaced, one line for a
//! refused replacement (the old version keeps serving), and status 0 on SIGTERM or
//! SIGINT. Every wait is for an output line, never for time.

#![allow(missing_docs)]
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;

use tomada_test_support::{Build, HANG_GUARD, cdylib, copy_to};

fn living(version: &str) -> PathBuf {
    if version == "1.0.0" {
        return cdylib("living");
    }
    Build::new("living").config(&format!("env.LIVING_VERSION=\"{version}\"")).cdylib()
}

/// `cp src dst` (rewrites `dst` in place).
fn cp_over(src: &Path, dst: &Path) {
    std::fs::copy(src, dst).unwrap();
}

struct Host {
    child: Child,
    /// (`true` for stderr, the line).
    lines: Receiver<(bool, String)>,
    seen: Vec<(bool, String)>,
}

impl Host {
    fn start(path: &Path, extra: &[&str]) -> Host {
        let mut child = Command::new(env!("CARGO_BIN_EXE_host"))
            .arg("--watch")
            .arg("--plugin")
            .arg(path)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for (is_err, stream) in [(false, Box::new(out) as Box<dyn std::io::Read + Send>), (true, Box::new(err))] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if tx.send((is_err, line)).is_err() {
                        break;
                    }
                }
            });
        }
        Host { child, lines, seen: Vec::new() }
    }

    /// Waits for a stderr line containing `log` and a stdout line equal to `out`
    /// (in either order). Lines in between are kept for messages.
    fn expect(&mut self, log: &str, out: Option<&str>) {
        let (mut got_log, mut got_out) = (false, out.is_none());
        while !(got_log && got_out) {
            let (is_err, line) = self
                .lines
                .recv_timeout(HANG_GUARD)
                .unwrap_or_else(|_| panic!("hung waiting for {log:?} / {out:?}; output so far: {:#?}", self.seen));
            if is_err && line.contains(log) {
                got_log = true;
            }
            if !is_err && Some(line.as_str()) == out {
                got_out = true;
            }
            self.seen.push((is_err, line));
        }
    }

    /// Sends `signal` and returns the exit code.
    fn end(mut self, signal: libc::c_int) -> Option<i32> {
        // SAFETY: signals a child process of ours that has not been reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        let status = self.child.wait().unwrap();
        status.code()
    }
}

fn watch_through_replacements(extra: &[&str], signal: libc::c_int) {
    let dir = tempfile::tempdir().unwrap();
    let (v1, v2) = (living("1.0.0"), living("2.0.0"));
    let path = copy_to(&v1, dir.path(), "living.so");
    let mut host = Host::start(&path, extra);
    host.expect("Plugin carregado: living-greeter v1.0.0 (ABI=1)", Some("Olá, Mundo (v1.0.0)"));

    cp_over(&v2, &path);
    host.expect("Plugin carregado: living-greeter v2.0.0 (ABI=1)", Some("Olá, Mundo (v2.0.0)"));

    // A bad replacement: one line saying why, and v2 keeps serving.
    cp_over(&cdylib("wrong-abi"), &path);
    // (A copy caught half-written may be refused first, as damaged: the ABI's
    // refusal follows once the file has settled.)
    let refusal = loop {
        host.expect("refused the new version", None);
        let line = host.seen.last().unwrap().1.clone();
        if line.contains("ABI") {
            break line;
        }
    };
    assert!(refusal.contains("ABI") && refusal.contains("living-greeter v2.0.0 keeps serving"), "{refusal}");

    // Deleted, then created again.
    std::fs::remove_file(&path).unwrap();
    std::fs::copy(&v1, &path).unwrap();
    host.expect("Plugin carregado: living-greeter v1.0.0 (ABI=1)", Some("Olá, Mundo (v1.0.0)"));

    assert_eq!(host.end(signal), Some(0), "exit status after the signal");
}

#[test]
fn watch_greets_with_each_new_version_and_ends_on_sigterm() {
    watch_through_replacements(&[], libc::SIGTERM);
}

#[test]
fn watch_isolated_greets_with_each_new_version_and_ends_on_sigint() {
    watch_through_replacements(&["--isolate"], libc::SIGINT);
}
