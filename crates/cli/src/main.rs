//! `tomada`: for people who ship plugins. Reads files, never runs them.
//!
//! - `tomada inspect FILE... [--json]`: what a plugin declares (name, version,
//!   description, contract and its methods, ABI, fingerprint, boundary version, the
//!   rustc and target that built it) — for a library of several exports, one block
//!   per export — or what contracts a host executable expects.
//! - `tomada diff A B [--export NAME]`: whether a plugin fits a host (or two plugins,
//!   or two hosts agree), and if not, exactly what differs, method by method. Of a
//!   library of several exports, every export is compared and reported under its
//!   name (against a host: each export of a contract the host expects; the others
//!   are listed as skipped), or only the one named. Exit status 0 when all fit, 1 when
//!   any does not, 2 when a file cannot be read or compared (a host executable that
//!   records no contracts: `tomada::expects!` is what it lacks).
//! - `tomada keygen --secret-key FILE --public-key FILE`: a minisign key pair. The
//!   secret key is written *unencrypted* (like `minisign -G -W`), readable only by its
//!   owner: keep it off shared machines, or make an encrypted one with `minisign -G`
//!   (which `tomada sign` also reads, asking for its password).
//! - `tomada sign --secret-key FILE PLUGIN`: writes `PLUGIN.minisig`, a detached
//!   minisign signature (`minisign -V` verifies it).
//! - `tomada new DIR [--path CHECKOUT]`: a new workspace of a contract crate, a
//!   plugin and a host that loads it (in-process and isolated), with its own test;
//!   tomada from crates.io, or from a checkout (see `new`).
//! - `tomada verify --public-key FILE PLUGIN`: checks `PLUGIN.minisig` against the key
//!   (and that the file is a plugin), as a host with that trusted key would, and
//!   names every export the signature covers.

mod new;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use tomada_host::escape::escape_controls;
use tomada_host::{Interface, LoadError, Manifest, flags};

#[derive(Parser, Debug)]
#[command(
    name = "tomada",
    version,
    about = "Inspect tomada plugins and compare contracts, without running any plugin code; start a new project"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print what each plugin declares, or what each host executable expects
    Inspect {
        /// Plugin libraries or host executables
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print one JSON document instead of text
        #[arg(long)]
        json: bool,
    },
    /// Make a minisign key pair for signing plugins (the secret key unencrypted)
    Keygen {
        /// Where to write the secret key (must not exist)
        #[arg(long, value_name = "FILE")]
        secret_key: PathBuf,
        /// Where to write the public key (must not exist)
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
    },
    /// Sign a plugin: writes PLUGIN.minisig
    Sign {
        /// The minisign secret key
        #[arg(long, value_name = "FILE")]
        secret_key: PathBuf,
        /// The plugin library
        plugin: PathBuf,
    },
    /// Verify PLUGIN.minisig with a public key, as a host trusting that key would
    Verify {
        /// The minisign public key
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
        /// The plugin library
        plugin: PathBuf,
    },
    /// Make a new workspace in DIR: a contract crate, a plugin and a host that loads it
    New {
        /// The directory to make (it must not exist, or be empty); its name names the crates
        dir: PathBuf,
        /// Depend on the tomada checkout at PATH (path dependencies) instead of crates.io
        #[arg(long, value_name = "PATH")]
        path: Option<PathBuf>,
    },
    /// Make a key for `tomada serve` or a remote host (Ed25519): writes FILE (secret) and FILE.pub (its id)
    #[cfg(target_os = "linux")]
    TlsKey {
        /// Where to write the secret key (must not exist); its id goes to FILE.pub and stdout
        #[arg(value_name = "FILE")]
        out: PathBuf,
    },
    /// Serve plugin files to remote hosts: each client's plugin in its own isolated, sandboxed process
    #[cfg(target_os = "linux")]
    Serve {
        /// The address to listen on, e.g. 0.0.0.0:7100 (port 0: any; the address is printed)
        #[arg(long, value_name = "ADDR")]
        listen: String,
        /// This server's secret key (from `tomada tls-key`)
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// A client key allowed to connect: its id (64 hex digits) or a FILE.pub holding it
        #[arg(long = "allow", value_name = "KEY", required = true)]
        allow: Vec<String>,
        /// Serve only plugins signed by this minisign public key (repeatable)
        #[arg(long, value_name = "FILE")]
        trust_key: Vec<PathBuf>,
        /// Run plugins without a sandbox (still each in its own process)
        #[arg(long)]
        no_sandbox: bool,
        /// The longest a plugin may take to start, in milliseconds
        #[arg(long, value_name = "MS", default_value_t = 10_000)]
        startup_ms: u64,
        /// At most N clients at once; more are told the server is overloaded
        #[arg(long, value_name = "N", default_value_t = 256)]
        max_clients: usize,
        /// At most N connections in their handshake at once; more are closed at once
        #[arg(long, value_name = "N", default_value_t = 64)]
        max_opening: usize,
        /// The plugin libraries to serve; a client names one by its file name
        #[arg(required = true, value_name = "PLUGIN")]
        plugins: Vec<PathBuf>,
    },
    /// Say whether A and B fit (a plugin and a host, two plugins or two hosts) and what differs
    Diff {
        /// A plugin library or host executable
        a: PathBuf,
        /// A plugin library or host executable
        b: PathBuf,
        /// Of a plugin library with several exports, compare only the one named NAME (default: every export)
        #[arg(long, value_name = "NAME")]
        export: Option<String>,
    },
}

/// What a file is to tomada.
enum Side {
    /// A plugin: its exports' manifests (one or more), the libraries it needs, and
    /// (for a universal Mach-O) every slice's architecture and target or error, and
    /// which one is shown.
    Plugin(Vec<Manifest>, Vec<String>, Vec<(String, Result<String, String>)>, usize),
    Host(Vec<Interface>),
}

/// Reads a file as a plugin, or failing that as a host executable. Files built for
/// any architecture and OS are read; of a universal Mach-O, this machine's slice
/// (or else the first that is a plugin).
fn read(path: &Path) -> Result<Side, LoadError> {
    let inspected = tomada_host::inspect_slices(path).and_then(|slices| {
        let listed = if slices.len() > 1 {
            let target = |s: &tomada_host::Slice| match &s.inspection {
                Ok(i) => Ok(i.manifest.target.clone()),
                Err(e) => Err(e.to_string()),
            };
            slices.iter().map(|s| (s.architecture.clone(), target(s))).collect()
        } else {
            Vec::new()
        };
        let mut first_error = None;
        for (n, slice) in slices.into_iter().enumerate() {
            match slice.inspection {
                Ok(i) => return Ok((i, listed, n)),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or(LoadError::NoDescriptor { path: path.to_path_buf() }))
    });
    match inspected {
        Ok((i, slices, shown)) => {
            let exports = i.exports.into_iter().map(|e| e.manifest).collect();
            Ok(Side::Plugin(exports, i.needed, slices, shown))
        }
        // Not a plugin: perhaps a host that records what it expects.
        Err(e @ (LoadError::NotALibrary { .. } | LoadError::NoDescriptor { .. })) => {
            tomada_host::expectations(path).map(Side::Host).map_err(|other| match other {
                // An executable is a host that does not record its contracts, not a
                // library missing `export!`.
                LoadError::NoExpectations { .. } if is_executable(path) => other,
                LoadError::NoExpectations { .. } => e,
                other => other,
            })
        }
        Err(e) => Err(e),
    }
}

/// What the `tomada` command says of an error reading a file: `LoadError`'s message,
/// but for an executable that records no contracts, what a host author does about it.
fn explain(e: &LoadError) -> String {
    match e {
        LoadError::NoExpectations { path } => format!(
            "`{}` is an executable, not a plugin, and records no tomada contracts it expects, so there is nothing to compare; a host records them with `tomada::expects!(contract_crate::Trait)` at the top level of its binary crate",
            path.display()
        ),
        other => other.to_string(),
    }
}

/// Whether `path` is an executable (rather than a shared library): an ELF of type
/// `ET_EXEC`, or a position-independent one (`ET_DYN` with an interpreter or
/// `DF_1_PIE`, as rustc links executables); a PE image without the DLL flag; a
/// Mach-O `MH_EXECUTE` (of a universal file, its first slice). Read, never run.
fn is_executable(path: &Path) -> bool {
    use object::read::elf::{Dyn, FileHeader, ProgramHeader};
    use object::read::macho::FatArch;
    use object::{FileKind, Object, ObjectKind, ReadCache, ReadRef, elf};

    fn elf_pie<'d, H: FileHeader<Endian = object::Endianness>, R: ReadRef<'d>>(data: R) -> bool {
        let Ok(header) = H::parse(data) else { return false };
        let Ok(endian) = header.endian() else { return false };
        let Ok(segments) = header.program_headers(endian, data) else { return false };
        segments.iter().any(|segment| match segment.p_type(endian) {
            elf::PT_INTERP => true,
            elf::PT_DYNAMIC => segment.dynamic(endian, data).ok().flatten().is_some_and(|entries| {
                entries.iter().any(|d| d.tag(endian) == elf::DT_FLAGS_1 && d.val(endian) & elf::DF_1_PIE.0 != 0)
            }),
            _ => false,
        })
    }

    fn kind<'d, R: ReadRef<'d>>(data: R) -> bool {
        match FileKind::parse(data) {
            Ok(FileKind::MachOFat32) => object::read::macho::MachOFatFile32::parse(data)
                .ok()
                .and_then(|fat| fat.arches().first().and_then(|a| a.data(data).ok()))
                .is_some_and(kind),
            Ok(FileKind::MachOFat64) => object::read::macho::MachOFatFile64::parse(data)
                .ok()
                .and_then(|fat| fat.arches().first().and_then(|a| a.data(data).ok()))
                .is_some_and(kind),
            Ok(FileKind::Elf32) => match object::File::parse(data).map(|f| f.kind()) {
                Ok(ObjectKind::Executable) => true,
                Ok(ObjectKind::Dynamic) => elf_pie::<elf::FileHeader32<object::Endianness>, R>(data),
                _ => false,
            },
            Ok(FileKind::Elf64) => match object::File::parse(data).map(|f| f.kind()) {
                Ok(ObjectKind::Executable) => true,
                Ok(ObjectKind::Dynamic) => elf_pie::<elf::FileHeader64<object::Endianness>, R>(data),
                _ => false,
            },
            Ok(_) => object::File::parse(data).is_ok_and(|f| f.kind() == ObjectKind::Executable),
            Err(_) => false,
        }
    }

    match std::fs::File::open(path) {
        Ok(file) => kind(&ReadCache::new(file)),
        Err(_) => false,
    }
}

fn methods_json(c: &Interface) -> Value {
    c.methods.iter().map(|m| json!({ "name": m.name, "since": m.since, "signature": m.to_string() })).collect()
}

fn contract_json(c: &Interface) -> Value {
    json!({
        "name": c.name,
        "version": c.version(),
        "abi": c.abi,
        "minor": c.minor,
        "fingerprint": format!("{:016x}", c.fingerprint),
        "methods": methods_json(c),
        "types": c.types.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

fn export_json(m: &Manifest) -> Value {
    json!({
        "index": m.index,
        "name": m.info.name,
        "version": m.info.version,
        "description": m.info.description,
        "contract": contract_json(&m.contract),
        "boundary": m.boundary,
        "panic": if m.flags & flags::PANIC_UNWIND != 0 { "unwind" } else { "abort" },
        "rustc": m.rustc,
        "target": m.target,
    })
}

fn inspect_json(path: &Path) -> Value {
    match read(path) {
        Ok(Side::Plugin(exports, needed, slices, shown)) => {
            // The first export's fields at the top (as for a library of one), and
            // every export in `exports`.
            let mut doc = export_json(&exports[0]);
            let fields = doc.as_object_mut().expect("an object");
            fields.remove("index");
            fields.insert("path".into(), json!(path));
            fields.insert("kind".into(), json!("plugin"));
            fields.insert("needs".into(), json!(needed));
            fields.insert(
                "slices".into(),
                slices
                    .iter()
                    .enumerate()
                    .map(|(n, (arch, target))| match target {
                        Ok(t) => json!({ "architecture": arch, "target": t, "shown": n == shown }),
                        Err(e) => json!({ "architecture": arch, "error": e }),
                    })
                    .collect(),
            );
            fields.insert("exports".into(), exports.iter().map(export_json).collect());
            doc
        }
        Ok(Side::Host(contracts)) => json!({
            "path": path,
            "kind": "host",
            "expects": contracts.iter().map(contract_json).collect::<Vec<_>>(),
        }),
        Err(e) => json!({ "path": path, "error": explain(&e) }),
    }
}

/// `println!` for text a plugin or host file controls (names, descriptions,
/// signatures): control characters are escaped, so a file cannot drive the
/// terminal or forge lines. (`--json` output is exact: JSON escapes them itself.)
macro_rules! out {
    ($($arg:tt)*) => {
        println!("{}", escape_controls(&format!($($arg)*)))
    };
}

fn print_contract(label: &str, c: &Interface) {
    out!("  {label:<12}{} {} (ABI {}, fingerprint {:016x})", c.name, c.version(), c.abi, c.fingerprint);
    for m in &c.methods {
        out!("  {:<12}{m}", "");
    }
    for t in &c.types {
        println!("  {:<12}{t}", "");
    }
}

fn inspect_text(path: &Path) -> bool {
    match read(path) {
        Ok(Side::Plugin(exports, needed, slices, shown)) => {
            out!("{}", path.display());
            for (i, (arch, target)) in slices.iter().enumerate() {
                let label = if i == 0 { "slices" } else { "" };
                match target {
                    Ok(t) if i == shown => out!("  {label:<12}{arch}: {t} (shown)"),
                    Ok(t) => out!("  {label:<12}{arch}: {t}"),
                    Err(e) => out!("  {label:<12}{arch}: {e}"),
                }
            }
            if exports.len() > 1 {
                let names: Vec<&str> = exports.iter().map(|m| m.info.name.as_str()).collect();
                out!("  {:<12}{}: {}", "exports", exports.len(), names.join(", "));
            }
            for m in &exports {
                if exports.len() > 1 {
                    out!("");
                    out!("  {:<12}#{} {}", "export", m.index, m.info.name);
                }
                out!("  {:<12}{} {}", "plugin", m.info.name, m.info.version);
                out!("  {:<12}{}", "description", m.info.description);
                print_contract("contract", &m.contract);
                out!("  {:<12}tomada boundary {}", "boundary", m.boundary);
                let panic =
                    if m.flags & flags::PANIC_UNWIND != 0 { "unwind (caught at the boundary)" } else { "abort" };
                out!("  {:<12}{panic}", "panics");
                out!("  {:<12}{} for {}", "built by", m.rustc, m.target);
            }
            if exports.len() > 1 {
                out!("");
            }
            out!("  {:<12}{}", "needs", if needed.is_empty() { "-".to_owned() } else { needed.join(", ") });
            true
        }
        Ok(Side::Host(contracts)) => {
            out!("{}", path.display());
            out!("  {:<12}a host executable", "kind");
            for c in &contracts {
                print_contract("expects", c);
            }
            true
        }
        Err(e) => {
            eprintln!("error: {}", escape_controls(&explain(&e)));
            false
        }
    }
}

/// A comparison's outcome: the line saying how they fit, or each difference.
type Verdict = Result<String, Vec<String>>;

/// One verdict: does the `plugin` contract serve the `host` contract?
fn verdict(host: &Interface, plugin: &Interface) -> Verdict {
    if host.name != plugin.name {
        return Err(vec![format!("the plugin implements `{}`, the host expects `{}`", plugin.name, host.name)]);
    }
    if host.abi != plugin.abi {
        return Err(vec![format!(
            "{} ABI {} in the plugin, ABI {} in the host: a major version apart; rebuild the plugin against the host's contract",
            host.name, plugin.abi, host.abi
        )]);
    }
    let fit = host.fit(plugin).map_err(|d| d.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let names = |fallback: bool| -> Vec<String> {
        host.methods[fit.provided..]
            .iter()
            .filter(|m| m.fallback == fallback)
            .map(|m| format!("`{}`", m.name))
            .collect()
    };
    let (defaulted, missing) = (names(true), names(false));
    let mut line = format!("{} {} fits {} {}", host.name, plugin.version(), host.name, host.version());
    if !missing.is_empty() {
        line.push_str(&format!(", without {} (calls to it return CallError::NotProvided)", missing.join(", ")));
    }
    if !defaulted.is_empty() {
        let with = if missing.is_empty() { "without" } else { "and without" };
        line.push_str(&format!(", {with} {} (the host runs its default body instead)", defaulted.join(", ")));
    }
    Ok(line)
}

/// Compares two contracts that should be the same (two plugins, or two hosts);
/// differences name the files, not "plugin" and "host".
fn same(a: &Interface, b: &Interface, a_name: &str, b_name: &str) -> Result<String, Vec<String>> {
    let relabel = |why: Vec<String>| -> Vec<String> {
        why.into_iter()
            .map(|w| {
                w.replace("in the plugin", &format!("in {b_name}")).replace("in the host", &format!("in {a_name}"))
            })
            .map(|w| {
                w.replace("only in the plugin", &format!("only in {b_name}"))
                    .replace("only in the host", &format!("only in {a_name}"))
            })
            .collect()
    };
    // Each direction: whichever is older is served by the newer.
    let (ab, ba) = (verdict(a, b).map_err(relabel), verdict(b, a).map_err(relabel));
    match (ab, ba) {
        (Ok(_), Ok(_)) if a.fingerprint == b.fingerprint => Ok(format!("both are {} {}", a.name, a.version())),
        (Ok(_), Ok(_)) => Ok(format!(
            "{} {} and {}: compatible, differing only in ways a minor version may",
            a.name,
            a.version(),
            b.version()
        )),
        (Err(why), _) | (_, Err(why)) => Err(why),
    }
}

/// Of a plugin library, the export named `name` (a library of one export: that one,
/// whatever its name, as a host that knows one export per library would take it).
fn named<'m>(path: &Path, exports: &'m [Manifest], name: &str) -> Result<&'m Manifest> {
    if let [one] = exports {
        return Ok(one);
    }
    exports.iter().find(|m| m.info.name == name).with_context(|| {
        let list: Vec<String> = exports.iter().map(|m| format!("`{}` ({})", m.info.name, m.contract.name)).collect();
        format!("{} has no export named `{name}`; it exports {}", path.display(), list.join(", "))
    })
}

/// Two exports, one of each library, that `diff` compares.
type Pair<'m> = (&'m Manifest, &'m Manifest);

/// Of two plugin libraries, the pairs of exports `diff` compares: the ones named
/// `name`; else the two when each has one; else each export of `a` with the export
/// of `b` of the same name, or else with `b`'s only export of the same contract.
/// Exports left without a counterpart are returned apart, to be reported.
fn pairs<'m>(
    (a_path, a): (&Path, &'m [Manifest]),
    (b_path, b): (&Path, &'m [Manifest]),
    name: Option<&str>,
) -> Result<(Vec<Pair<'m>>, Vec<String>)> {
    if let Some(name) = name {
        return Ok((vec![(named(a_path, a, name)?, named(b_path, b, name)?)], Vec::new()));
    }
    if let ([x], [y]) = (a, b) {
        return Ok((vec![(x, y)], Vec::new()));
    }
    let mut found: Vec<Pair<'m>> = Vec::new();
    let mut alone = Vec::new();
    for x in a {
        let same_contract: Vec<&Manifest> = b.iter().filter(|y| y.contract.name == x.contract.name).collect();
        match (b.iter().find(|y| y.info.name == x.info.name), same_contract.as_slice()) {
            (Some(y), _) | (None, &[y]) => found.push((x, y)),
            _ => alone.push(format!(
                "export `{}` ({}) of {} has no export of the same name, or one export of its contract, in {}",
                x.info.name,
                x.contract.name,
                a_path.display(),
                b_path.display()
            )),
        }
    }
    for y in b.iter().filter(|y| !found.iter().any(|(_, f)| std::ptr::eq(*f, *y))) {
        alone.push(format!(
            "export `{}` ({}) of {} is compared with nothing in {}",
            y.info.name,
            y.contract.name,
            b_path.display(),
            a_path.display()
        ));
    }
    if found.is_empty() {
        anyhow::bail!(
            "no export of {} matches one of {} by name or by contract; choose one with `--export NAME`",
            a_path.display(),
            b_path.display()
        );
    }
    Ok((found, alone))
}

/// Reads a file for `diff`: an error says why it cannot be compared.
fn read_for_diff(path: &Path) -> Result<Side> {
    read(path).map_err(|e| match e {
        LoadError::NoExpectations { .. } => anyhow::anyhow!(explain(&e)),
        e => anyhow::anyhow!("cannot read {}: {}", path.display(), explain(&e)),
    })
}

/// Compares A and B. Of a plugin library with several exports, every export is
/// compared (each reported under its name): with a host, each export of a contract
/// the host expects (the others are listed as skipped); with another library, the
/// pairs [`pairs`] finds. `--export NAME` limits it to that export.
/// Returns the exit code: 0 fit (and, for OLD NEW builds of one contract, compatible
/// both ways), 3 newer reads older, 1 no fit (see
/// [`Compat::exit_code`](tomada_host::tomada::interface::Compat::exit_code)).
fn diff(a_path: &Path, b_path: &Path, export: Option<&str>) -> Result<u8> {
    let a = read_for_diff(a_path)?;
    let b = read_for_diff(b_path)?;
    let (a_name, b_name) = (a_path.display().to_string(), b_path.display().to_string());
    // Each comparison: the export(s) it is about (when a library has several), and
    // the verdict.
    let mut verdicts: Vec<(Option<String>, Verdict)> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    // Two builds of one contract (OLD NEW): what changed, member by member.
    let mut changes = Vec::new();
    // Map and set keys of types that changed between them.
    let mut warnings = Vec::new();
    match (&a, &b) {
        (Side::Plugin(exports, ..), Side::Host(h)) | (Side::Host(h), Side::Plugin(exports, ..)) => {
            let (plugin_path, host_path) =
                if matches!(a, Side::Plugin(..)) { (a_path, b_path) } else { (b_path, a_path) };
            let expects = |m: &Manifest| h.iter().any(|c| c.name == m.contract.name);
            let chosen: Vec<&Manifest> = match export {
                Some(name) => vec![named(plugin_path, exports, name)?],
                // None of a contract the host expects: each is reported as not fitting.
                None if !exports.iter().any(expects) => exports.iter().collect(),
                None => {
                    for m in exports.iter().filter(|m| !expects(m)) {
                        skipped.push(format!(
                            "export `{}` implements `{}`, which {} does not expect",
                            m.info.name,
                            m.contract.name,
                            host_path.display()
                        ));
                    }
                    exports.iter().filter(|m| expects(m)).collect()
                }
            };
            for p in chosen {
                let label = (exports.len() > 1).then(|| format!("export `{}`", p.info.name));
                let verdict = match h.iter().find(|c| c.name == p.contract.name) {
                    Some(c) => verdict(c, &p.contract),
                    None => {
                        let expected: Vec<_> = h.iter().map(|c| format!("`{}`", c.name)).collect();
                        Err(vec![format!(
                            "the plugin implements `{}`, the host expects {}",
                            p.contract.name,
                            expected.join(", ")
                        )])
                    }
                };
                verdicts.push((label, verdict));
            }
        }
        (Side::Plugin(x, ..), Side::Plugin(y, ..)) => {
            let (found, alone) = pairs((a_path, x), (b_path, y), export)?;
            skipped = alone;
            for (p, q) in found {
                let label = (x.len() > 1 || y.len() > 1).then(|| {
                    if p.info.name == q.info.name {
                        format!("export `{}`", p.info.name)
                    } else {
                        format!("exports `{}` and `{}`", p.info.name, q.info.name)
                    }
                });
                changes.extend(tomada_host::tomada::interface::classify(&p.contract, &q.contract));
                warnings.extend(tomada_host::tomada::interface::evolved_keys(&p.contract, &q.contract));
                verdicts.push((label, same(&p.contract, &q.contract, &a_name, &b_name)));
            }
        }
        (Side::Host(g), Side::Host(h)) => {
            let common: Vec<_> = g.iter().filter_map(|c| h.iter().find(|d| d.name == c.name).map(|d| (c, d))).collect();
            if common.is_empty() {
                verdicts.push((None, Err(vec!["the two hosts expect no contract in common".to_owned()])));
            } else {
                for (c, d) in &common {
                    changes.extend(tomada_host::tomada::interface::classify(c, d));
                    warnings.extend(tomada_host::tomada::interface::evolved_keys(c, d));
                }
                verdicts.extend(common.into_iter().map(|(c, d)| (None, same(c, d, &a_name, &b_name))));
            }
        }
    }
    let mut fits = true;
    for (label, v) in verdicts {
        match (v, label) {
            (Ok(line), None) => out!("fit: {line}"),
            (Ok(line), Some(label)) => out!("fit: {label}: {line}"),
            (Err(why), label) => {
                fits = false;
                match label {
                    None => out!("no fit: {a_name} and {b_name} differ:"),
                    Some(label) => out!("no fit: {a_name} and {b_name} differ ({label}):"),
                }
                for w in why {
                    out!("  - {w}");
                }
            }
        }
    }
    for s in skipped {
        out!("skip: {s}");
    }
    let worst = tomada_host::tomada::interface::verdict(&changes);
    if fits && !changes.is_empty() {
        out!("from {a_name} to {b_name}: {worst}");
        for c in &changes {
            out!("  - {c}");
        }
    }
    for w in warnings {
        out!("warn: {w}");
    }
    Ok(if fits { worst.exit_code() } else { 1 })
}

/// Creates `path` for writing; refuses to overwrite, and (Unix) makes it private if asked.
fn create_new(path: &Path, private: bool) -> Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    options.open(path).with_context(|| format!("cannot create `{}` (it must not exist yet)", path.display()))
}

fn keygen(secret: &Path, public: &Path) -> Result<String> {
    let pair = minisign::KeyPair::generate_unencrypted_keypair().context("cannot generate a key pair")?;
    let pk = pair.pk.to_box().context("cannot encode the public key")?.to_string();
    let sk = pair.sk.to_box(None).context("cannot encode the secret key")?.to_string();
    use std::io::Write;
    create_new(secret, true)?
        .write_all(sk.as_bytes())
        .with_context(|| format!("cannot write `{}`", secret.display()))?;
    create_new(public, false)?
        .write_all(pk.as_bytes())
        .with_context(|| format!("cannot write `{}`", public.display()))?;
    Ok(format!(
        "public key {}: {}\nsecret key {} (unencrypted: keep it private)",
        public.display(),
        pk.lines().nth(1).unwrap_or_default(),
        secret.display()
    ))
}

fn sign(secret: &Path, plugin: &Path) -> Result<PathBuf> {
    let text =
        std::fs::read_to_string(secret).with_context(|| format!("cannot read secret key `{}`", secret.display()))?;
    let boxed = minisign::SecretKeyBox::from_string(&text)
        .with_context(|| format!("`{}` is not a minisign secret key", secret.display()))?;
    // Unencrypted (`tomada keygen`, `minisign -G -W`), or else encrypted: minisign
    // asks for the password.
    let sk = match boxed.clone().into_unencrypted_secret_key() {
        Ok(sk) => sk,
        Err(_) => {
            boxed.into_secret_key(None).with_context(|| format!("cannot open secret key `{}`", secret.display()))?
        }
    };
    let pk = minisign::PublicKey::from_secret_key(&sk).ok();
    let file = std::fs::File::open(plugin).with_context(|| format!("cannot read `{}`", plugin.display()))?;
    let name = plugin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let trusted = format!("timestamp:{now}\tfile:{name}\thashed");
    let signature = minisign::sign(pk.as_ref(), &sk, file, Some(&trusted), None)
        .with_context(|| format!("cannot sign `{}`", plugin.display()))?;
    let mut out = plugin.as_os_str().to_owned();
    out.push(".minisig");
    let out = PathBuf::from(out);
    std::fs::write(&out, signature.to_string()).with_context(|| format!("cannot write `{}`", out.display()))?;
    Ok(out)
}

/// Verifies `plugin`'s signature; the line names every export the signature covers.
fn verify(public: &Path, plugin: &Path) -> Result<String> {
    let policy = tomada_host::TrustPolicy::new().trust_key_file(public)?.strict_modes(false);
    let inspected = tomada_host::Loader::with_policy(policy).inspect(plugin)?;
    let exports: Vec<String> = inspected
        .inspection()
        .exports
        .iter()
        .map(|e| format!("{} {} ({})", e.manifest.info.name, e.manifest.info.version, e.manifest.contract.name))
        .collect();
    Ok(escape_controls(&format!(
        "{}: good signature by key {} ({})",
        plugin.display(),
        inspected.signed_by().unwrap_or("?"),
        exports.join("; ")
    ))
    .into_owned())
}

fn report(result: Result<String>) -> ExitCode {
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

/// Writes a new TLS key to `out` (mode 0600) and its id to `out.pub`.
#[cfg(target_os = "linux")]
fn tls_key(out: &Path) -> Result<String> {
    use std::io::Write;
    let identity = tomada_host::remote::Identity::generate()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(out).with_context(|| format!("cannot create `{}`", out.display()))?;
    file.write_all(identity.to_pem().as_bytes()).with_context(|| format!("cannot write `{}`", out.display()))?;
    let mut public = out.as_os_str().to_owned();
    public.push(".pub");
    std::fs::write(&public, format!("{}\n", identity.id()))
        .with_context(|| format!("cannot write `{}`", Path::new(&public).display()))?;
    Ok(identity.id().to_string())
}

/// A key id given on the command line, or read from a `.pub` file.
#[cfg(target_os = "linux")]
fn key_id(text: &str) -> Result<tomada_host::remote::KeyId> {
    match text.parse() {
        Ok(id) => Ok(id),
        Err(e) => {
            let path = Path::new(text);
            if !path.exists() {
                return Err(e.into());
            }
            let read = std::fs::read_to_string(path).with_context(|| format!("cannot read `{text}`"))?;
            Ok(read.parse().with_context(|| format!("in `{text}`"))?)
        }
    }
}

/// `tomada serve`.
#[cfg(target_os = "linux")]
#[allow(clippy::too_many_arguments)]
fn serve(
    listen: &str,
    key: &Path,
    allow: &[String],
    trust_key: &[PathBuf],
    no_sandbox: bool,
    startup_ms: u64,
    max_clients: usize,
    max_opening: usize,
    plugins: &[PathBuf],
) -> Result<String> {
    use std::io::Write;
    use tomada_host::isolate::{Isolation, Sandbox};
    let identity = tomada_host::remote::Identity::read(key)?;
    let clients = allow.iter().map(|a| key_id(a)).collect::<Result<Vec<_>>>()?;
    let mut loader = tomada_host::Loader::new();
    if !trust_key.is_empty() {
        let mut policy = tomada_host::TrustPolicy::new();
        for k in trust_key {
            policy = policy.trust_key_file(k)?;
        }
        loader = loader.policy(policy);
    }
    let mut isolation = Isolation::new().startup(std::time::Duration::from_millis(startup_ms));
    if !no_sandbox {
        isolation = isolation.sandbox(Sandbox::new().deny_network().deny_exec().accept_weaker_kernel());
    }
    let server = tomada_host::remote::Server::bind(listen, &identity, &clients, &loader, plugins, isolation)?
        .max_clients(max_clients)
        .max_opening(max_opening);
    let address = server.local_addr()?;
    // What happens to each connection, on stderr (stdout is for the line below).
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .try_init();
    // The first line on stdout: scripts and tests read the port from it.
    println!("listening on {address} as key {}", identity.id());
    std::io::stdout().flush()?;
    server.run()?;
    Ok("the listener ended".to_owned())
}

/// Whether `command` is `tomada serve`, which writes to sockets and its plugins'
/// channels and must see a closed peer as an error, not die of `SIGPIPE`.
#[cfg(unix)]
fn is_server(command: &Command) -> bool {
    #[cfg(target_os = "linux")]
    if matches!(command, Command::Serve { .. }) {
        return true;
    }
    let _ = command;
    false
}

/// Gives `SIGPIPE` back its default action, which Rust's runtime sets to "ignore":
/// a command whose stdout is closed early (`tomada diff A B | head -1`) then ends as
/// `cat` or `grep` do, quietly, killed by the signal, instead of panicking in
/// `println!` with "failed printing to stdout: Broken pipe" and exit code 101.
#[cfg(unix)]
fn restore_sigpipe() {
    // SAFETY: `signal` with `SIG_DFL` only sets this process's disposition of
    // `SIGPIPE` back to the default (no handler of ours runs in signal context); no
    // thread of this program is started yet to race it, and children started with
    // `std::process::Command` get the default action anyway.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    // Each client's plugin runs in a child process of this very executable.
    tomada_host::isolate::serve_if_runner();
    let cli = Cli::parse();
    #[cfg(unix)]
    if !is_server(&cli.command) {
        restore_sigpipe();
    }
    match cli.command {
        Command::Inspect { files, json } => {
            if json {
                let docs: Vec<Value> = files.iter().map(|f| inspect_json(f)).collect();
                let failed = docs.iter().any(|d| d.get("error").is_some());
                println!("{}", serde_json::to_string_pretty(&docs).expect("JSON values serialise"));
                if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
            } else {
                // Every file is inspected, even after one fails.
                let results: Vec<bool> = files.iter().map(|f| inspect_text(f)).collect();
                if results.iter().all(|ok| *ok) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
            }
        }
        Command::Keygen { secret_key, public_key } => report(keygen(&secret_key, &public_key)),
        #[cfg(target_os = "linux")]
        Command::TlsKey { out } => report(tls_key(&out)),
        #[cfg(target_os = "linux")]
        Command::Serve { listen, key, allow, trust_key, no_sandbox, startup_ms, max_clients, max_opening, plugins } => {
            report(serve(&listen, &key, &allow, &trust_key, no_sandbox, startup_ms, max_clients, max_opening, &plugins))
        }
        Command::Sign { secret_key, plugin } => {
            report(sign(&secret_key, &plugin).map(|out| format!("wrote {}", out.display())))
        }
        Command::Verify { public_key, plugin } => report(verify(&public_key, &plugin)),
        Command::New { dir, path } => report(new::new(
            &dir,
            match path {
                Some(root) => new::Source::Checkout(root),
                None => new::Source::Version(env!("CARGO_PKG_VERSION")),
            },
        )),
        Command::Diff { a, b, export } => match diff(&a, &b, export.as_deref()) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                let chain: Vec<String> = e.chain().map(ToString::to_string).collect();
                eprintln!("error: {}", escape_controls(&chain.join(": ")));
                ExitCode::from(2)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use tomada_host::tomada::{Contract, Interface};

    mod v10 {
        #[tomada::contract(abi = 1, name = "t::Svc")]
        pub trait Svc {
            fn a(&self) -> u32;
        }
    }

    mod v12 {
        #[tomada::contract(abi = 1, name = "t::Svc")]
        pub trait Svc {
            fn a(&self) -> u32;
            #[tomada(since = 1)]
            fn hello(&self) -> u32 {
                self.a() + 1
            }
            #[tomada(since = 2)]
            fn audit(&self) -> String;
        }
    }

    /// A plugin older than the host: the methods it lacks with a default body run
    /// that body in the host; only those without one answer `NotProvided` (the line
    /// said `NotProvided` of both).
    #[test]
    fn an_older_plugin_against_a_host_says_which_missing_methods_run_a_default_body() {
        let host = Interface::from(&<dyn v12::Svc as Contract>::DESCRIPTION);
        let plugin = Interface::from(&<dyn v10::Svc as Contract>::DESCRIPTION);
        let line = super::verdict(&host, &plugin).unwrap();
        assert_eq!(
            line,
            "t::Svc 1.0 fits t::Svc 1.2, without `audit` (calls to it return CallError::NotProvided), \
             and without `hello` (the host runs its default body instead)"
        );
        let same = super::verdict(&host, &host).unwrap();
        assert_eq!(same, "t::Svc 1.2 fits t::Svc 1.2");
    }
}
