//! `cargo xtask bench`: the issue-20 table, measured in one run.
//!
//! Runs the criterion benches of `tomada-host` that hold each figure and its floor
//! (`boundary`: `call/add`, `call/greet`, `load`; `contract`: `entries`), reads their
//! medians from `target/criterion/**/new/{benchmark,estimates}.json`, runs the
//! `isolation` harness for the isolated figures (1 MiB of bytes, threads, spawn) and
//! reads its printed lines, then prints every figure beside its floor, the ratio and
//! the goal, in the table format of issue 20. The table also goes to
//! `target/bench-table.md`.
//!
//! `cargo xtask bench --no-isolation` leaves out the isolation harness (a minute or two
//! of child processes); `--no-run` only prints the table from the last results.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cargo, root, say, status};

/// A criterion result: group and function, median in nanoseconds.
type Medians = HashMap<(String, String), f64>;

/// What the isolation harness printed, by line label.
struct Isolation {
    lines: Vec<String>,
}

impl Isolation {
    /// The line starting with `label` (labels are padded to 40 columns).
    fn line(&self, label: &str) -> Option<&str> {
        self.lines.iter().map(String::as_str).find(|l| l.strip_prefix(label).is_some_and(|rest| rest.starts_with(' ')))
    }

    /// The duration after `key` (`p50`, `p99`) on the line `label`, in nanoseconds.
    fn duration(&self, label: &str, key: &str) -> Option<f64> {
        let line = self.line(label)?;
        let mut words = line[label.len()..].split_whitespace();
        while let Some(w) = words.next() {
            if w == key {
                return parse_duration(words.next()?);
            }
        }
        None
    }

    /// The number before `calls/s` on the line `label`.
    fn per_second(&self, label: &str) -> Option<f64> {
        let line = self.line(label)?;
        let words: Vec<&str> = line[label.len()..].split_whitespace().collect();
        let at = words.iter().position(|w| *w == "calls/s")?;
        words.get(at.checked_sub(1)?)?.parse().ok()
    }
}

/// `1.23ms`, `456.7µs`, `89ns`, `1.2s` (Rust's `Debug` of a `Duration`) in nanoseconds.
fn parse_duration(text: &str) -> Option<f64> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "ns" => 1.0,
        "µs" | "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return None,
    };
    Some(number * scale)
}

/// Every `target/criterion/**/new/` result: its `benchmark.json` names it, its
/// `estimates.json` holds the median.
fn medians(dir: &Path) -> Medians {
    let mut out = Medians::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if path.file_name().is_some_and(|n| n == "new") {
                if let Some((key, median)) = read_result(&path) {
                    out.insert(key, median);
                }
            } else {
                stack.push(path);
            }
        }
    }
    out
}

fn read_result(new: &Path) -> Option<((String, String), f64)> {
    let json = |name: &str| -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(new.join(name)).ok()?).ok()
    };
    let bench = json("benchmark.json")?;
    let estimates = json("estimates.json")?;
    let group = bench.get("group_id")?.as_str()?.to_owned();
    let function = bench.get("function_id")?.as_str()?.to_owned();
    let median = estimates.get("median")?.get("point_estimate")?.as_f64()?;
    Some(((group, function), median))
}

/// A duration in nanoseconds, in the unit that reads best.
fn show(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.2} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

/// One row of the table.
struct Row {
    figure: &'static str,
    floor: String,
    now: String,
    ratio: String,
    goal: &'static str,
}

fn rows(m: &Medians, iso: Option<&Isolation>) -> Vec<Row> {
    let get = |g: &str, f: &str| m.get(&(g.to_owned(), f.to_owned())).copied();
    let missing = || "not measured".to_owned();
    let mut rows = Vec::new();
    let mut pair = |figure, floor_name: &str, floor: Option<f64>, now: Option<f64>, goal, extra: String| {
        rows.push(match (floor, now) {
            (Some(f), Some(n)) => Row {
                figure,
                floor: format!("{floor_name} {}{extra}", show(f)),
                now: show(n),
                ratio: format!("**{:.2}×**", n / f),
                goal,
            },
            _ => Row { figure, floor: format!("{floor_name}{extra}"), now: missing(), ratio: "–".into(), goal },
        });
    };
    let direct = get("call/add", "direct_dyn").map(|d| format!("; direct `dyn` {}", show(d))).unwrap_or_default();
    pair(
        "`add` through `Plugin<dyn C>`",
        "bare fn pointer",
        get("call/add", "bare_fn_ptr"),
        get("call/add", "tomada"),
        "≤ 1.05×",
        direct,
    );
    let direct = get("call/greet", "direct_dyn").map(|d| format!("; direct `dyn` {}", show(d))).unwrap_or_default();
    pair(
        "trivial `greet` (one allocation)",
        "hand C ABI",
        get("call/greet", "bare_c_abi"),
        get("call/greet", "tomada"),
        "≤ 1.2×",
        direct,
    );
    let extra = get("entries", "direct_dyn").map(|d| format!("; direct `dyn` {}", show(d))).unwrap_or_default();
    pair(
        "`echo(Vec<Entry>)`, 1,000 rich entries",
        "abi_stable `RVec<REntry>`",
        get("entries", "abi_stable"),
        get("entries", "tomada"),
        "≤ 1.2×",
        extra,
    );
    let inspect = match (get("load", "inspect"), get("load", "raw_dlopen")) {
        (Some(i), Some(r)) => format!("; inspection alone {:.2}×", i / r),
        _ => String::new(),
    };
    pair(
        "check + load of a fresh file",
        "raw `dlopen`",
        get("load", "raw_dlopen"),
        get("load", "tomada_load_verify"),
        "≤ 1.2×",
        inspect,
    );
    let hash = get("load", "blake2b_in_memory")
        .map(|h| format!("; BLAKE2b of the file in memory {}", show(h)))
        .unwrap_or_default();
    pair(
        "signed load (minisign)",
        "raw `dlopen`",
        get("load", "raw_dlopen"),
        get("load", "tomada_load_signed"),
        "≤ 1.3× hashing the file at the best speed",
        hash,
    );

    // The isolation harness's lines.
    let label_bytes = "isolated reverse(&[u8]) -> Vec<u8>, 1 MiB";
    let floor_bytes = "bare ping-pong, 1 MiB each way";
    match iso {
        Some(iso) => {
            // The bytes floor is the last "1 MiB each way" line before the bytes row;
            // the `mib` case prints one too, so take the one printed with the row.
            let idx = iso.lines.iter().position(|l| l.starts_with(label_bytes));
            let floor = idx.and_then(|i| iso.lines[..i].iter().rev().find(|l| l.starts_with(floor_bytes)).cloned());
            let floor_ns =
                floor.as_deref().and_then(|l| Isolation { lines: vec![l.to_owned()] }.duration(floor_bytes, "p50"));
            pair(
                "isolated 1 MiB `&[u8]` → `Vec<u8>` (p50)",
                "blocking socketpair",
                floor_ns,
                iso.duration(label_bytes, "p50"),
                "≤ 1.5×",
                String::new(),
            );
            let one = iso.per_second("isolated greet, 1 threads");
            let four = iso.per_second("isolated greet, 4 threads");
            let bare4 = iso.per_second("bare ping-pong, 4 threads");
            rows.push(match (one, four) {
                (Some(one), Some(four)) => Row {
                    figure: "isolated, 4 host threads vs one (calls/s)",
                    floor: format!(
                        "one thread {one:.0}/s{}",
                        bare4.map(|b| format!("; 4 bare socketpairs {b:.0}/s")).unwrap_or_default()
                    ),
                    now: format!(
                        "{four:.0}/s (p50 {}, p99 {})",
                        iso.duration("isolated greet, 4 threads", "p50").map(show).unwrap_or_default(),
                        iso.duration("isolated greet, 4 threads", "p99").map(show).unwrap_or_default()
                    ),
                    ratio: format!("**{:.2}×**", four / one),
                    goal: "≥ 0.3×, never below the blocking socketpair",
                },
                _ => Row {
                    figure: "isolated, 4 host threads vs one (calls/s)",
                    floor: "one thread".into(),
                    now: missing(),
                    ratio: "–".into(),
                    goal: "≥ 0.3×",
                },
            });
            let spawn = iso.duration("spawn + handshake + first call", "p50");
            rows.push(Row {
                figure: "spawn + handshake + first isolated call (p50 of 30)",
                floor: iso
                    .duration("the same, Sandbox::strict()", "p50")
                    .map(|s| format!("– (strict: {})", show(s)))
                    .unwrap_or_else(|| "–".into()),
                now: spawn.map(show).unwrap_or_else(missing),
                ratio: spawn.map(|s| format!("{:.2}× the goal", s / 1.2e6)).unwrap_or_else(|| "–".into()),
                goal: "≤ 1.2 ms",
            });
        }
        None => {
            for figure in [
                "isolated 1 MiB `&[u8]` → `Vec<u8>` (p50)",
                "isolated, 4 host threads vs one (calls/s)",
                "spawn + handshake + first isolated call (p50 of 30)",
            ] {
                rows.push(Row {
                    figure,
                    floor: "–".into(),
                    now: "not run (`--no-isolation`)".into(),
                    ratio: "–".into(),
                    goal: "",
                });
            }
        }
    }
    for (figure, goal) in [
        ("check + load of a plugin with debug info", "≤ 1.2×"),
        ("first load in a fresh process", "≤ 1.5× `dlopen`"),
        ("whole host run", "≤ 1.1×"),
        ("1,000 plugins, per load", "≤ 1.2×"),
    ] {
        rows.push(Row {
            figure,
            floor: "–".into(),
            now: "no bench in this repository (the anchors' harness)".into(),
            ratio: "–".into(),
            goal,
        });
    }
    rows
}

fn machine() -> String {
    let run = |cmd: &str, args: &[&str]| -> String {
        Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let lscpu = run("lscpu", &[]);
    let field = |name: &str| {
        lscpu
            .lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches(':').trim().to_owned()))
            .unwrap_or_default()
    };
    format!(
        "{} × {} ({}), Linux {}, {}, load average {}",
        field("CPU(s)"),
        field("Model name"),
        field("Hypervisor vendor"),
        run("uname", &["-r"]),
        run("rustc", &["--version"]),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

fn criterion_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from).join("criterion")
}

pub(crate) fn bench(args: &[String]) -> Result<(), String> {
    let root = root();
    let no_run = args.iter().any(|a| a == "--no-run");
    let isolation = !args.iter().any(|a| a == "--no-isolation");
    let mut iso = None;
    if !no_run {
        say("cargo bench -p tomada-host --bench boundary (call/add, call/greet, load)");
        status(cargo().current_dir(&root).args([
            "bench",
            "-p",
            "tomada-host",
            "--bench",
            "boundary",
            "--",
            "^(call/add|call/greet|load)/",
        ]))?;
        say("cargo bench -p tomada-host --bench contract (entries: tomada, abi_stable, direct_dyn)");
        status(cargo().current_dir(&root).args([
            "bench",
            "-p",
            "tomada-host",
            "--bench",
            "contract",
            "--",
            "^entries/(tomada|abi_stable|direct_dyn)$",
        ]))?;
        if isolation {
            say("cargo bench -p tomada-host --bench isolation (mib_bytes, threads, spawn)");
            let out = cargo()
                .current_dir(&root)
                .env("TOMADA_BENCH_CASES", "mib_bytes,threads,spawn")
                .args(["bench", "-p", "tomada-host", "--bench", "isolation"])
                .output()
                .map_err(|e| format!("cannot run the isolation bench: {e}"))?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            print!("{text}");
            if !out.status.success() {
                return Err(format!(
                    "the isolation bench failed with {}:\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            iso = Some(Isolation { lines: text.lines().map(str::to_owned).collect() });
        }
    }
    let medians = medians(&criterion_dir(&root));
    let mut table = format!(
        "Machine: {}\n\n| figure | floor / anchor (same run) | now | ratio | goal |\n|---|---|---|---|---|\n",
        machine()
    );
    for r in rows(&medians, iso.as_ref()) {
        table.push_str(&format!("| {} | {} | {} | {} | {} |\n", r.figure, r.floor, r.now, r.ratio, r.goal));
    }
    table.push_str(
        "\nFloors measured in this run; the anchors quoted in issue 20 (stabby, abi_stable's `greet`, Go) come from the anchors' own harness, not rerun here.\n",
    );
    println!("\n{table}");
    let out = criterion_dir(&root).with_file_name("bench-table.md");
    std::fs::write(&out, &table).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    say(&format!("table written to {}", out.display()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("1.50ms"), Some(1.5e6));
        assert_eq!(parse_duration("250.00µs"), Some(250e3));
        assert_eq!(parse_duration("12ns"), Some(12.0));
        assert_eq!(parse_duration("fast"), None);
    }

    #[test]
    fn isolation_lines_parse() {
        let iso = Isolation {
            lines: vec![
                "isolated greet, 4 threads                p50    20.00µs  p99   300.00µs     54000 calls/s  cpu/call    10.00µs  ratio p50 1.00x  cpu 1.00x".into(),
            ],
        };
        assert_eq!(iso.per_second("isolated greet, 4 threads"), Some(54000.0));
        assert_eq!(iso.duration("isolated greet, 4 threads", "p99"), Some(300e3));
        assert_eq!(iso.per_second("isolated greet, 1 threads"), None);
    }
}
