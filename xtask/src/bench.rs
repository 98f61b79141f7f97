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
//! The `anchors` harness (`crates/host/benches/anchors.rs`) measures the four rows
//! criterion cannot hold (a plugin with debug info, the first load in a fresh process,
//! the whole host run against a no-plugin binary, 1,000 plugins); its `anchor ...`
//! lines are kept in `target/bench-anchors.txt` (the isolation harness's in
//! `target/bench-isolation.txt`).
//!
//! `cargo xtask bench --no-isolation` leaves out the isolation harness (a minute or two
//! of child processes), `--no-anchors` the anchors harness, `--anchors-only` runs only
//! the anchors harness (the other rows from the last results); `--no-run` only prints
//! the table from the last results.

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

fn rows(m: &Medians, iso: Option<&Isolation>, anchors: &Anchors) -> Vec<Row> {
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
                        "{four:.0}/s (p50 {}, p99 {}){}",
                        iso.duration("isolated greet, 4 threads", "p50").map(show).unwrap_or_default(),
                        iso.duration("isolated greet, 4 threads", "p99").map(show).unwrap_or_default(),
                        iso.per_second("isolated greet, 4 threads, 4 lanes")
                            .map(|l| format!(
                                "; with `Isolation::lanes(4)` {l:.0}/s (p50 {}, p99 {}), {:.2}× the 4 socketpairs",
                                iso.duration("isolated greet, 4 threads, 4 lanes", "p50").map(show).unwrap_or_default(),
                                iso.duration("isolated greet, 4 threads, 4 lanes", "p99").map(show).unwrap_or_default(),
                                bare4.map_or(f64::NAN, |b| l / b)
                            ))
                            .unwrap_or_default()
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
            // The same start taking a pre-started runner (`Isolation::spare_runner`),
            // against the same start without one from the same interleaved rounds.
            let (spare, spare_min) =
                (iso.duration("spare runner, 5 ms apart", "p50"), iso.duration("spare runner, 5 ms apart", "min"));
            let (base, base_min) =
                (iso.duration("no spare, 5 ms apart", "p50"), iso.duration("no spare, 5 ms apart", "min"));
            rows.push(Row {
                figure: "the same with a spare runner (`Isolation::spare_runner`; 30 starts 5 ms apart, p50)",
                floor: match (base, base_min) {
                    (Some(b), Some(m)) => {
                        format!("the same starts without it, interleaved: {} (min {})", show(b), show(m))
                    }
                    _ => "–".into(),
                },
                now: match (spare, spare_min) {
                    (Some(s), Some(m)) => format!("{} (min {}, {:.2}× the goal)", show(s), show(m), m / 1.2e6),
                    _ => missing(),
                },
                ratio: match (spare, spare_min, base, base_min) {
                    (Some(s), Some(m), Some(b), Some(bm)) => format!("**{:.2}×** (min {:.2}×)", s / b, m / bm),
                    _ => "–".into(),
                },
                goal: "≤ 1.2 ms",
            });
        }
        None => {
            for figure in [
                "isolated 1 MiB `&[u8]` → `Vec<u8>` (p50)",
                "isolated, 4 host threads vs one (calls/s)",
                "spawn + handshake + first isolated call (p50 of 30)",
                "the same with a spare runner (`Isolation::spare_runner`; 30 starts 5 ms apart, p50)",
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
    anchor_rows(&mut rows, anchors);
    rows
}

/// What the `anchors` harness printed: its `anchor NAME key=value...` lines, times in
/// nanoseconds.
#[derive(Default)]
struct Anchors {
    cases: HashMap<String, HashMap<String, f64>>,
}

impl Anchors {
    fn parse(text: &str) -> Anchors {
        let mut cases = HashMap::new();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if words.next() != Some("anchor") {
                continue;
            }
            let Some(name) = words.next() else { continue };
            let values = words
                .filter_map(|w| w.split_once('='))
                .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
                .collect();
            cases.insert(name.to_owned(), values);
        }
        Anchors { cases }
    }

    fn get(&self, case: &str, key: &str) -> Option<f64> {
        self.cases.get(case)?.get(key).copied()
    }
}

/// The four rows the `anchors` harness measures (see `crates/host/benches/anchors.rs`).
fn anchor_rows(rows: &mut Vec<Row>, a: &Anchors) {
    let row = |figure, floor_name: String, floor: Option<f64>, now: Option<f64>, now_extra: String, goal| match (
        floor, now,
    ) {
        (Some(f), Some(n)) => Row {
            figure,
            floor: format!("{floor_name} {}", show(f)),
            now: format!("{}{now_extra}", show(n)),
            ratio: format!("**{:.2}×**", n / f),
            goal,
        },
        _ => Row {
            figure,
            floor: floor_name,
            now: "not measured (`cargo bench -p tomada-host --bench anchors`)".into(),
            ratio: "–".into(),
            goal,
        },
    };
    let mb = |bytes: Option<f64>| bytes.map(|b| format!("{:.1} MB", b / 1e6)).unwrap_or_default();
    let stripped = match (a.get("debug_info", "stripped_tomada"), a.get("debug_info", "stripped_dlopen")) {
        (Some(t), Some(d)) => format!(
            "; the stripped build ({}): {} vs `dlopen` {}, {:.2}×",
            mb(a.get("debug_info", "stripped_bytes")),
            show(t),
            show(d),
            t / d
        ),
        _ => String::new(),
    };
    let inspect = |case: &str, key: &str, floor: &str| match (a.get(case, key), a.get(case, floor)) {
        (Some(i), Some(f)) => format!("; inspection alone {}, {:.2}×", show(i), i / f),
        _ => String::new(),
    };
    let lean = match (a.get("debug_info", "lean"), a.get("debug_info", "dlopen")) {
        (Some(l), Some(d)) => {
            format!("; `debug_info(false)` (no DWARF in the sealed copy): {}, **{:.2}×**", show(l), l / d)
        }
        _ => String::new(),
    };
    rows.push(row(
        "check + load of a plugin with debug info (`debug = 1`)",
        format!("raw `dlopen` of a copy of the same file ({})", mb(a.get("debug_info", "bytes"))),
        a.get("debug_info", "dlopen"),
        a.get("debug_info", "tomada"),
        format!("{}{lean}{stripped}", inspect("debug_info", "inspect", "dlopen")),
        "≤ 1.2×, whatever the debug info",
    ));
    let touched = |who: &str| match (a.get("fresh", &format!("{who}_faults")), a.get("fresh", &format!("{who}_rss_kb")))
    {
        (Some(f), Some(r)) => format!(" (+{f:.0} minor faults, +{r:.0} kB RSS)"),
        _ => String::new(),
    };
    rows.push(row(
        "first load in a fresh process (median of fresh processes)",
        format!("`dlopen` in a fresh process{}", touched("dlopen")),
        a.get("fresh", "dlopen"),
        a.get("fresh", "tomada"),
        format!(
            "{}{}{}",
            touched("tomada"),
            inspect("fresh", "inspect", "dlopen"),
            match (a.get("fresh", "immutable_tomada"), a.get("fresh", "immutable_dlopen")) {
                (Some(t), Some(d)) => format!(
                    "; the file immutable (no sealed copy) {} against `dlopen` of it {}, **{:.2}×**",
                    show(t),
                    show(d),
                    t / d
                ),
                _ => String::new(),
            }
        ),
        "≤ 1.5× `dlopen`",
    ));
    rows.push(row(
        "whole host run (`host --plugin greeter_v1.so`, fork+exec+wait)",
        "Rust no-plugin (`host/examples/no_plugin.rs`)".into(),
        a.get("host_run", "floor"),
        a.get("host_run", "tomada"),
        match (a.get("host_run", "immutable"), a.get("host_run", "floor")) {
            (Some(f), Some(n)) => {
                format!("; the plugin's file immutable (no sealed copy) {}, {:.2}×", show(f), f / n)
            }
            _ => String::new(),
        },
        "≤ 1.1×",
    ));
    let mut extra = String::new();
    for (what, key) in [("mean", ""), ("first 100", "_first100"), ("last 100", "_last100"), ("p90", "_p90")] {
        if let (Some(t), Some(d)) =
            (a.get("thousand", &format!("tomada{key}")), a.get("thousand", &format!("dlopen{key}")))
        {
            extra.push_str(&format!("; {what} {} vs {}, {:.2}×", show(t), show(d), t / d));
        }
    }
    if let (Some(s), Some(f)) = (a.get("thousand", "shmem_kb"), a.get("thousand", "file_kb")) {
        extra.push_str(&format!(
            "; 1,000 loaded: {:.0} MB shared memory (the sealed copies), {:.0} MB file pages",
            s / 1e3,
            f / 1e3
        ));
    }
    if let (Some(u), Some(c)) = (a.get("thousand_unload", "tomada_median"), a.get("thousand_unload", "dlclose_median"))
    {
        // Unloaded one of each in turn, each timed: medians, like the loads.
        extra.push_str(&format!("; unload {} vs `dlclose` {} (medians), {:.2}×", show(u), show(c), u / c));
    }
    rows.push(row(
        "1,000 plugins, per load (median; all kept loaded)",
        "raw `dlopen` of 1,000 other copies, interleaved".into(),
        a.get("thousand", "dlopen_median"),
        a.get("thousand", "tomada_median"),
        extra,
        "≤ 1.2×",
    ));
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
    let anchors_only = args.iter().any(|a| a == "--anchors-only");
    let isolation = !anchors_only && !args.iter().any(|a| a == "--no-isolation");
    let anchors = !args.iter().any(|a| a == "--no-anchors");
    let mut iso = None;
    let isolation_out = criterion_dir(&root).with_file_name("bench-isolation.txt");
    if !no_run && !anchors_only {
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
            std::fs::write(&isolation_out, &text)
                .map_err(|e| format!("cannot write {}: {e}", isolation_out.display()))?;
            iso = Some(Isolation { lines: text.lines().map(str::to_owned).collect() });
        }
    }
    // After `--no-run` or `--anchors-only`: the last run's lines, if there was one.
    if iso.is_none()
        && !args.iter().any(|a| a == "--no-isolation")
        && let Ok(text) = std::fs::read_to_string(&isolation_out)
    {
        iso = Some(Isolation { lines: text.lines().map(str::to_owned).collect() });
    }
    let anchors_out = criterion_dir(&root).with_file_name("bench-anchors.txt");
    if !no_run && anchors {
        say("cargo bench -p tomada-host --bench anchors (debug info, fresh process, whole run, 1,000 plugins)");
        let out = cargo()
            .current_dir(&root)
            .args(["bench", "-p", "tomada-host", "--bench", "anchors"])
            .output()
            .map_err(|e| format!("cannot run the anchors bench: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        print!("{text}");
        if !out.status.success() {
            return Err(format!(
                "the anchors bench failed with {}:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        std::fs::write(&anchors_out, &text).map_err(|e| format!("cannot write {}: {e}", anchors_out.display()))?;
    }
    // Also after `--no-run` or `--anchors-only`: the last run's lines.
    let anchors = Anchors::parse(&std::fs::read_to_string(&anchors_out).unwrap_or_default());
    let medians = medians(&criterion_dir(&root));
    let mut table = format!(
        "Machine: {}\n\n| figure | floor / anchor (same run) | now | ratio | goal |\n|---|---|---|---|---|\n",
        machine()
    );
    for r in rows(&medians, iso.as_ref(), &anchors) {
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
    fn anchor_lines_parse() {
        let a = Anchors::parse(
            "whole host run (300 each)   host 1.50ms  no-plugin 1.20ms  ratio 1.25x\nanchor host_run tomada=1500000 floor=1200000 runs=300 immutable=1300000\nanchor fresh tomada=x\n",
        );
        assert_eq!(a.get("host_run", "tomada"), Some(1.5e6));
        assert_eq!(a.get("host_run", "immutable"), Some(1.3e6));
        assert_eq!(a.get("host_run", "floor"), Some(1.2e6));
        assert_eq!(a.get("fresh", "tomada"), None);
        let mut rows = Vec::new();
        anchor_rows(&mut rows, &a);
        assert_eq!(rows.len(), 4);
        let run = rows.iter().find(|r| r.figure.starts_with("whole host run")).expect("the whole-run row");
        assert_eq!(run.ratio, "**1.25×**");
        assert!(rows[0].now.starts_with("not measured"));
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
