//! The `tomada` command on real fixture plugins and the real host executable.

#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tomada_test_support::{cdylib, workspace_root};

fn tomada(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tomada")).args(args).output().expect("run tomada")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The seed's host executable, built by cargo for the fixtures.
fn host_exe() -> PathBuf {
    if let Some(prebuilt) = tomada_test_support::prebuilt_exe("host") {
        return prebuilt;
    }
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(workspace_root())
        .args(["build", "--quiet", "-p", "host", "--target-dir"])
        .arg(workspace_root().join("target/fixtures"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    workspace_root().join("target/fixtures/debug").join(format!("host{}", std::env::consts::EXE_SUFFIX))
}

#[test]
fn inspect_a_plugin() {
    let path = cdylib("greeter");
    let out = tomada(&["inspect".as_ref(), path.as_os_str()]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    for needle in [
        "plugin      greeter 1.0.0",
        "description Plugin de exemplo que dá oi",
        "contract    pluginapi::Greeter 1.0 (ABI 1, fingerprint ",
        "fn greet(&self, &str) -> String",
        "boundary    tomada boundary 3",
        "panics      unwind",
        "built by    rustc ",
        "needs       ",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    // The libraries needed are read from ELF's `DT_NEEDED` only.
    if cfg!(target_os = "linux") {
        assert!(text.contains("libc.so.6"), "libc.so.6 not in:\n{text}");
    }
}

#[test]
fn inspect_json_for_machines() {
    let path = cdylib("evolve-1-1");
    let out = tomada(&["inspect".as_ref(), "--json".as_ref(), path.as_os_str()]);
    assert!(out.status.success(), "{out:?}");
    let docs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let doc = &docs[0];
    assert_eq!(doc["kind"], "plugin");
    assert_eq!(doc["name"], "evolve-1-1");
    assert_eq!(doc["contract"]["name"], "evolve::Api");
    assert_eq!(doc["contract"]["version"], "1.1");
    assert_eq!(doc["contract"]["abi"], 1);
    assert_eq!(doc["contract"]["methods"][2]["name"], "farewell");
    assert_eq!(doc["contract"]["methods"][2]["since"], 1);
    assert_eq!(doc["boundary"], tomada_host::tomada::BOUNDARY_VERSION);
    assert_eq!(doc["panic"], "unwind");
    assert!(doc["rustc"].as_str().unwrap().starts_with("rustc "));
    assert_eq!(doc["contract"]["fingerprint"].as_str().unwrap().len(), 16);
}

#[test]
fn inspect_a_host_executable() {
    let out = tomada(&["inspect".as_ref(), host_exe().as_os_str()]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("a host executable"), "{text}");
    assert!(text.contains("expects     pluginapi::Greeter 1.0"), "{text}");
}

#[test]
fn inspect_bad_files_reports_each_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello\n").unwrap();
    let good = cdylib("greeter");
    let out = tomada(&["inspect".as_ref(), text.as_os_str(), good.as_os_str(), "/nonexistent.so".as_ref()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("notes.txt` is not a shared library: it is a text file"), "{err}");
    assert!(err.contains("/nonexistent.so` does not exist"), "{err}");
    // The good file in between is still inspected.
    assert!(stdout(&out).contains("plugin      greeter 1.0.0"));

    let out = tomada(&["inspect".as_ref(), "--json".as_ref(), text.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let docs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(docs[0]["error"].as_str().unwrap().contains("text file"));
}

fn diff(a: &Path, b: &Path) -> Output {
    tomada(&["diff".as_ref(), a.as_os_str(), b.as_os_str()])
}

#[test]
fn diff_plugin_and_host() {
    let host = host_exe();
    let out = diff(&cdylib("greeter"), &host);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "fit: pluginapi::Greeter 1.0 fits pluginapi::Greeter 1.0\n");

    let out = diff(&host, &cdylib("changed-layout"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stdout(&out).contains("- method `greet` changed: argument 1 is `String` in the plugin, `&str` in the host"),
        "{}",
        stdout(&out)
    );

    let out = diff(&cdylib("wrong-abi"), &host);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("ABI 2 in the plugin, ABI 1 in the host"), "{}", stdout(&out));

    let out = diff(&cdylib("allround"), &host);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("the plugin implements `allround_api::Allround`, the host expects `pluginapi::Greeter`")
    );
}

#[test]
fn diff_two_plugins() {
    let out = diff(&cdylib("evolve-1-0"), &cdylib("evolve-1-1"));
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    // `farewell` was appended without a default body: a newer host reads an older
    // plugin, which answers `CallError::NotProvided` for it.
    assert!(stdout(&out).contains("method `farewell`: appended in minor 1 without a default body"), "{}", stdout(&out));
    assert!(stdout(&out).contains("compatible, differing only in ways a minor version may"), "{}", stdout(&out));

    let broken = cdylib("evolve-1-1-broken");
    let out = diff(&cdylib("evolve-1-0"), &broken);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("method `count` changed: argument 1 is `Vec<u8>` in "), "{text}");
    assert!(text.contains(&broken.display().to_string()), "{text}");
}

#[test]
fn diff_unreadable_file_is_exit_2() {
    let out = diff(Path::new("/nonexistent.so"), &cdylib("greeter"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: cannot read /nonexistent.so: "));
}

/// `tomada diff A B | head -1`: a stdout whose reader is gone ends the command as it
/// ends `cat` (killed by `SIGPIPE` on Unix), not with a panic and exit code 101.
#[test]
fn diff_into_a_closed_pipe_ends_quietly() {
    let (reader, writer) = std::io::pipe().unwrap();
    // The reader is gone before the command writes its first line.
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_tomada"))
        .arg("diff")
        .arg(cdylib("evolve-1-0"))
        .arg(cdylib("evolve-1-1"))
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}: {stderr}", out.status);
    }
}

fn run_ok(args: &[&std::ffi::OsStr]) -> String {
    let out = tomada(args);
    assert!(out.status.success(), "{args:?}: {}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    stdout(&out)
}

/// The real `minisign` tool (Debian package `minisign`; `.ci/run` installs it).
fn minisign() -> Command {
    let probe = Command::new("minisign").arg("-v").output();
    assert!(probe.is_ok(), "this test needs the `minisign` tool: apt-get install minisign");
    Command::new("minisign")
}

#[test]
fn keygen_sign_verify_and_minisign_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let (sk, pk) = (dir.path().join("tomada.key"), dir.path().join("tomada.pub"));
    let plugin = tomada_test_support::copy_to(&cdylib("greeter"), dir.path(), "greeter.so");
    let out =
        run_ok(&["keygen".as_ref(), "--secret-key".as_ref(), sk.as_os_str(), "--public-key".as_ref(), pk.as_os_str()]);
    assert!(out.contains("public key"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&sk).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // No overwriting a key.
    let again =
        tomada(&["keygen".as_ref(), "--secret-key".as_ref(), sk.as_os_str(), "--public-key".as_ref(), pk.as_os_str()]);
    assert!(!again.status.success());

    let out = run_ok(&["sign".as_ref(), "--secret-key".as_ref(), sk.as_os_str(), plugin.as_os_str()]);
    assert!(out.contains("greeter.so.minisig"), "{out}");
    let out = run_ok(&["verify".as_ref(), "--public-key".as_ref(), pk.as_os_str(), plugin.as_os_str()]);
    assert!(out.contains("good signature by key") && out.contains("greeter 1.0.0"), "{out}");

    // The real tool verifies what `tomada sign` wrote.
    let out = minisign().arg("-V").arg("-p").arg(&pk).arg("-m").arg(&plugin).output().unwrap();
    assert!(out.status.success(), "minisign -V: {}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));

    // And `tomada verify` refuses a tampered file and another key.
    let mut bytes = std::fs::read(&plugin).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&plugin, &bytes).unwrap();
    let out = tomada(&["verify".as_ref(), "--public-key".as_ref(), pk.as_os_str(), plugin.as_os_str()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has a bad signature"), "{out:?}");
}

#[test]
fn verify_a_file_signed_by_the_minisign_tool() {
    let dir = tempfile::tempdir().unwrap();
    let (sk, pk) = (dir.path().join("m.key"), dir.path().join("m.pub"));
    let plugin = tomada_test_support::copy_to(&cdylib("greeter"), dir.path(), "greeter.so");
    let status = minisign().args(["-G", "-W", "-p"]).arg(&pk).arg("-s").arg(&sk).status().unwrap();
    assert!(status.success());
    let status = minisign().arg("-S").arg("-s").arg(&sk).arg("-m").arg(&plugin).status().unwrap();
    assert!(status.success());
    let out = run_ok(&["verify".as_ref(), "--public-key".as_ref(), pk.as_os_str(), plugin.as_os_str()]);
    assert!(out.contains("good signature"), "{out}");
}

/// A file name with control characters is escaped in text output and exact in JSON.
#[test]
fn inspect_escapes_control_characters_in_text_not_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let evil = dir.path().join("evil\x1b[2J\r.so");
    std::fs::copy(cdylib("greeter"), &evil).unwrap();
    let out = tomada(&["inspect".as_ref(), evil.as_os_str()]);
    let text = stdout(&out);
    assert!(text.contains("evil\\e[2J\\r.so") && !text.contains('\x1b') && !text.contains('\r'), "{text:?}");
    let out = tomada(&["inspect".as_ref(), "--json".as_ref(), evil.as_os_str()]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let path = json.pointer("/0/path").or_else(|| json.pointer("/path")).and_then(|p| p.as_str()).unwrap();
    assert!(path.ends_with("evil\x1b[2J\r.so"), "{path:?}");
}

// ---- files built for other architectures and systems ----

/// The manifest bytes of fixture `package`'s cdylib.
fn manifest_of(package: &str) -> Vec<u8> {
    tomada_host::inspect(cdylib(package)).unwrap().manifest_bytes
}

/// A Mach-O dylib for `arch` whose `__DATA,__tomada` section holds `manifest`. Written
/// with `object` (a relocatable object, then marked a dylib in its header): enough for
/// inspection, which never loads it. No Apple linker needed.
fn macho_dylib(arch: object::Architecture, manifest: &[u8]) -> Vec<u8> {
    use object::write::{Object, StandardSegment};
    let mut obj = Object::new(object::BinaryFormat::MachO, arch, object::Endianness::Little);
    let segment = obj.segment_name(StandardSegment::Data).to_vec();
    let id = obj.add_section(segment, b"__tomada".to_vec(), object::SectionKind::ReadOnlyData);
    obj.append_section_data(id, manifest, 8);
    let mut bytes = obj.write().unwrap();
    // mach_header_64.filetype, after magic, cputype and cpusubtype.
    bytes[12..16].copy_from_slice(&object::macho::MH_DYLIB.0.to_le_bytes());
    bytes
}

/// A universal (fat) Mach-O of `slices` (CPU type, file), each aligned to 16 KiB as
/// `lipo` does.
fn fat_macho(slices: &[(u32, &[u8])]) -> Vec<u8> {
    const ALIGN: u32 = 14;
    let mut header = Vec::new();
    header.extend_from_slice(&object::macho::FAT_MAGIC.to_be_bytes());
    header.extend_from_slice(&(slices.len() as u32).to_be_bytes());
    let mut body: Vec<u8> = Vec::new();
    let start = 1usize << ALIGN;
    for (cputype, file) in slices {
        let offset = start + body.len();
        for field in [*cputype, 0, offset as u32, file.len() as u32, ALIGN] {
            header.extend_from_slice(&field.to_be_bytes());
        }
        body.extend_from_slice(file);
        body.resize(body.len().next_multiple_of(start), 0);
    }
    header.resize(start, 0);
    header.extend_from_slice(&body);
    header
}

#[test]
fn inspect_and_diff_read_plugins_of_any_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let host = host_exe();
    // An aarch64 (or, on aarch64, x86_64) ELF: the greeter with another e_machine.
    let foreign = dir.path().join("foreign.so");
    let mut elf = std::fs::read(cdylib("greeter")).unwrap();
    let machine: u16 = if cfg!(target_arch = "aarch64") { 62 } else { 183 };
    elf[18..20].copy_from_slice(&machine.to_le_bytes());
    std::fs::write(&foreign, elf).unwrap();
    // Loading still needs this host's architecture...
    let err = tomada_host::inspect(&foreign).unwrap_err();
    assert!(matches!(err, tomada_host::LoadError::WrongArchitecture { .. }), "{err:?}");
    // ...reading does not.
    let out = tomada(&["inspect".as_ref(), foreign.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).contains("plugin      greeter 1.0.0"), "{}", stdout(&out));
    let out = diff(&foreign, &host);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // Mach-O dylibs for arm64 and x86_64, alone and as one universal file.
    let greeter = manifest_of("greeter");
    let arm = macho_dylib(object::Architecture::Aarch64, &greeter);
    let arm_path = dir.path().join("arm64.dylib");
    std::fs::write(&arm_path, &arm).unwrap();
    let out = diff(&arm_path, &host);
    assert_eq!(stdout(&out), "fit: pluginapi::Greeter 1.0 fits pluginapi::Greeter 1.0\n", "{out:?}");
    let err = tomada_host::inspect(&arm_path).unwrap_err();
    assert!(matches!(err, tomada_host::LoadError::WrongPlatform { .. }), "{err:?}");
}

#[test]
fn a_universal_macho_shows_this_machines_slice_and_lists_all() {
    use object::macho::{CPU_TYPE_ARM64, CPU_TYPE_X86_64};
    let dir = tempfile::tempdir().unwrap();
    let host = host_exe();
    // This machine's slice holds the greeter; the other, first in the file, a plugin
    // of another ABI: picking the first slice would not fit the host.
    let (here, there) = if cfg!(target_arch = "aarch64") {
        ((CPU_TYPE_ARM64.0, object::Architecture::Aarch64), (CPU_TYPE_X86_64.0, object::Architecture::X86_64))
    } else {
        ((CPU_TYPE_X86_64.0, object::Architecture::X86_64), (CPU_TYPE_ARM64.0, object::Architecture::Aarch64))
    };
    let ours = macho_dylib(here.1, &manifest_of("greeter"));
    let other = macho_dylib(there.1, &manifest_of("wrong-abi"));
    let path = dir.path().join("universal.dylib");
    std::fs::write(&path, fat_macho(&[(there.0, &other), (here.0, &ours)])).unwrap();

    let slices = tomada_host::inspect_slices(&path).unwrap();
    let archs: Vec<&str> = slices.iter().map(|s| s.architecture.as_str()).collect();
    assert_eq!(archs, [format!("{:?}", here.1), format!("{:?}", there.1)]);

    let out = diff(&path, &host);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "fit: pluginapi::Greeter 1.0 fits pluginapi::Greeter 1.0\n");

    let out = tomada(&["inspect".as_ref(), path.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out);
    let target = tomada_host::inspect(cdylib("greeter")).unwrap().manifest.target;
    assert!(text.contains(&format!("  slices      {:?}: {target} (shown)\n", here.1)), "{text}");
    assert!(text.contains(&format!("              {:?}: {target}\n", there.1)), "{text}");
    assert!(text.contains("contract    pluginapi::Greeter 1.0 (ABI 1"), "{text}");

    let json = tomada(&["inspect".as_ref(), "--json".as_ref(), path.as_os_str()]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc[0]["slices"].as_array().map(Vec::len), Some(2), "{doc}");

    // A damaged universal header is an error that says so.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4..8].copy_from_slice(&1000u32.to_be_bytes());
    std::fs::write(&path, bytes).unwrap();
    let err = tomada_host::inspect_slices(&path).unwrap_err();
    assert!(err.to_string().contains("universal (fat) Mach-O header"), "{err}");
}

#[test]
fn inspect_lists_every_export_of_a_library() {
    let path = cdylib("family");
    let out = tomada(&["inspect".as_ref(), path.as_os_str()]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    for needle in [
        "exports     3: hello, hola, memory",
        "export      #0 hello",
        "plugin      hello 0.3.0",
        "description says olá",
        "export      #1 hola",
        "plugin      hola 1.1.0",
        "export      #2 memory",
        "plugin      memory 2.0.0",
        "contract    kv_api::Store 1.0 (ABI 1, fingerprint ",
        "fn keys(&self) -> Vec<String>",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    // One block per export, each with its own contract.
    assert_eq!(text.matches("contract    pluginapi::Greeter").count(), 2, "{text}");
    // A library of one export prints no export list.
    let one = stdout(&tomada(&["inspect".as_ref(), cdylib("greeter").as_os_str()]));
    assert!(!one.contains("  exports     ") && !one.contains("  export      #"), "{one}");

    let out = tomada(&["inspect".as_ref(), "--json".as_ref(), path.as_os_str()]);
    assert!(out.status.success(), "{out:?}");
    let docs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let exports = docs[0]["exports"].as_array().unwrap();
    let names: Vec<(&str, &str, u64)> = exports
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["contract"]["name"].as_str().unwrap(), e["index"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        names,
        [("hello", "pluginapi::Greeter", 0), ("hola", "pluginapi::Greeter", 1), ("memory", "kv_api::Store", 2)]
    );
    // The first export's fields stay at the top, as for a library of one.
    assert_eq!(docs[0]["name"], "hello");
}

#[test]
fn diff_compares_only_the_export_named() {
    let family = cdylib("family");
    let greeter = cdylib("greeter");
    // Named: that one alone is compared (no line for `hello`, no `skip` for `memory`).
    let out =
        tomada(&["diff".as_ref(), "--export".as_ref(), "hola".as_ref(), family.as_os_str(), host_exe().as_os_str()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "fit: export `hola`: pluginapi::Greeter 1.0 fits pluginapi::Greeter 1.0\n");
    let out =
        tomada(&["diff".as_ref(), "--export".as_ref(), "memory".as_ref(), family.as_os_str(), greeter.as_os_str()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stdout(&out).contains("kv_api::Store"), "{}", stdout(&out));
    let out =
        tomada(&["diff".as_ref(), "--export".as_ref(), "adios".as_ref(), family.as_os_str(), greeter.as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no export named `adios`"), "{out:?}");
}

// ---- every export, and hosts that record nothing ----

/// A library of two greeters (and a store) against a greeter host: both greeters are
/// checked, each reported under its name; the store, which the host does not expect,
/// is listed as skipped. (This exited 2, "choose one with `--export NAME`".)
#[test]
fn diff_checks_every_export_a_host_expects() {
    let family = cdylib("family");
    for (a, b) in [(family.clone(), host_exe()), (host_exe(), family.clone())] {
        let out = diff(&a, &b);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let text = stdout(&out);
        let host = host_exe().display().to_string();
        assert_eq!(
            text,
            format!(
                "fit: export `hello`: pluginapi::Greeter 1.0 fits pluginapi::Greeter 1.0\n\
                 fit: export `hola`: pluginapi::Greeter 1.0 fits pluginapi::Greeter 1.0\n\
                 skip: export `memory` implements `kv_api::Store`, which {host} does not expect\n"
            )
        );
    }
}

/// Every export is compared, so one that does not fit is found even beside one that
/// does: the family's two greeters against a greeter whose `greet` takes a `String`
/// (no names in common: each greeter is paired with the other library's one greeter).
#[test]
fn diff_reports_each_export_that_does_not_fit() {
    let (family, changed) = (cdylib("family"), cdylib("changed-layout"));
    let out = diff(&family, &changed);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    for export in ["hello", "hola"] {
        assert!(
            text.contains(&format!(
                "no fit: {} and {} differ (exports `{export}` and `greeter`):\n  - method `greet` changed: argument 1 is",
                family.display(),
                changed.display()
            )),
            "{export}: {text}"
        );
    }
    assert!(text.contains("skip: export `memory` (kv_api::Store) of "), "{text}");

    // The same library twice: each export with its namesake, all fit.
    let out = diff(&family, &family);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out);
    assert_eq!(text.lines().filter(|l| l.starts_with("fit: export `")).count(), 3, "{text}");
    assert!(text.contains("fit: export `memory`: both are kv_api::Store 1.0"), "{text}");
}

/// A C executable and a C shared library, built here (`cc`), neither a tomada file.
#[cfg(target_os = "linux")]
fn c_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let src = dir.join("main.c");
    std::fs::write(&src, "int answer(void) { return 42; }\nint main(void) { return answer() - 42; }\n").unwrap();
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let build = |args: &[&str], out: &Path| {
        let status = Command::new(&cc)
            .args(args)
            .arg("-o")
            .arg(out)
            .arg(&src)
            .status()
            .expect("this test needs a C compiler (`cc`)");
        assert!(status.success(), "cc {args:?} failed");
    };
    let (pie, no_pie, lib) = (dir.join("pie"), dir.join("no-pie"), dir.join("libanswer.so"));
    build(&["-pie", "-fPIE"], &pie);
    build(&["-no-pie", "-fno-PIE"], &no_pie);
    build(&["-shared", "-fPIC"], &lib);
    (pie, no_pie, lib)
}

/// An executable that records no contracts is a host without `tomada::expects!`, and
/// the message says so; it is not "a shared library but not a tomada plugin ... a
/// plugin calls `tomada::export!`", which a position-independent executable (an ELF
/// `ET_DYN`, as rustc links them) used to get. A shared library without a descriptor
/// still gets that one.
#[cfg(target_os = "linux")]
#[test]
fn a_host_without_expects_is_told_to_record_them() {
    let dir = tempfile::tempdir().unwrap();
    let (pie, no_pie, lib) = c_files(dir.path());
    // The `tomada` command itself: a Rust executable that records no contracts.
    let rust_exe = PathBuf::from(env!("CARGO_BIN_EXE_tomada"));
    for exe in [&rust_exe, &pie, &no_pie] {
        let out = diff(&cdylib("greeter"), exe);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "`{}` is an executable, not a plugin, and records no tomada contracts",
                exe.display()
            )) && err.contains("tomada::expects!"),
            "{err}"
        );
        assert!(!err.contains("export!") && !err.contains("shared library"), "{err}");
        let out = tomada(&["inspect".as_ref(), exe.as_os_str()]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("tomada::expects!"), "{out:?}");
    }
    // A shared library with no descriptor: a plugin that lacks `export!`.
    for lib in [lib, cdylib("no-descriptor")] {
        let out = diff(&cdylib("greeter"), &lib);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is a shared library but not a tomada plugin") && err.contains("tomada::export!"),
            "{err}"
        );
    }
}

/// `verify` names every export the signature covers, not the first alone.
#[test]
fn verify_names_every_export() {
    let dir = tempfile::tempdir().unwrap();
    let (sk, pk) = (dir.path().join("k.key"), dir.path().join("k.pub"));
    let plugin = tomada_test_support::copy_to(&cdylib("family"), dir.path(), "family.so");
    run_ok(&["keygen".as_ref(), "--secret-key".as_ref(), sk.as_os_str(), "--public-key".as_ref(), pk.as_os_str()]);
    run_ok(&["sign".as_ref(), "--secret-key".as_ref(), sk.as_os_str(), plugin.as_os_str()]);
    let out = run_ok(&["verify".as_ref(), "--public-key".as_ref(), pk.as_os_str(), plugin.as_os_str()]);
    assert!(
        out.contains(
            "(hello 0.3.0 (pluginapi::Greeter); hola 1.1.0 (pluginapi::Greeter); memory 2.0.0 (kv_api::Store))\n"
        ),
        "{out}"
    );
}

// ---- tomada new ----

/// Runs cargo in `dir` into `target/scaffold` of this checkout (kept between runs,
/// so tomada's dependencies compile once). The new workspace starts from this
/// checkout's `Cargo.lock`, so nothing is resolved anew (and nothing is fetched that
/// this checkout's own builds have fetched).
fn cargo_in(dir: &Path, args: &[&str]) -> Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", workspace_root().join("target/scaffold"))
        .args(args)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo {args:?} in {}:\n{}{}",
        dir.display(),
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What the new workspace's host prints, `place` being where the plugin runs.
fn scaffold_transcript(out: &Output, name: &str, place: &str) {
    assert!(out.status.success(), "{out:?}");
    let text = stdout(out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert_eq!(lines[0], format!("loaded {name}-plugin 0.1.0 {place}"));
    assert_eq!(lines[1..4], ["Olá, Mundo!", "refused: the name is empty", "Olá mais tarde, async!"]);
    assert!(lines[4].starts_with("the plugin panicked: cannot greet \"panic\" (at plugin/src/lib.rs:"), "{text}");
    assert_eq!(lines[5], "Olá, de novo!");
}

/// `tomada new` in a temporary directory (outside the repository), with path
/// dependencies on this checkout: the workspace builds, its host runs the plugin in
/// its own process and in a child process with the same transcript, the plugin
/// depends on the contract crate alone (an `async fn` included), `tomada diff` finds
/// they fit, and the workspace's own `cargo test` passes.
#[test]
fn tomada_new_makes_a_workspace_that_builds_runs_and_passes_its_test() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("hello-tomada");
    let out = tomada(&["new".as_ref(), project.as_os_str(), "--path".as_ref(), workspace_root().as_os_str()]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("cargo run -p hello-tomada-host -- --isolate"), "{}", stdout(&out));
    let plugin_manifest = std::fs::read_to_string(project.join("plugin/Cargo.toml")).unwrap();
    let dependencies = plugin_manifest.split("[dependencies]").nth(1).unwrap();
    assert_eq!(dependencies.trim(), "hello-tomada-contract.workspace = true", "{plugin_manifest}");

    cargo_in(&project, &["build"]);
    let built = workspace_root().join("target/scaffold/debug");
    let host = built.join(format!("hello-tomada-host{}", std::env::consts::EXE_SUFFIX));
    let plugin =
        built.join(format!("{}hello_tomada_plugin{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX));
    // The plugin beside the host is the default.
    scaffold_transcript(&Command::new(&host).output().unwrap(), "hello-tomada", "in this process");
    #[cfg(unix)]
    scaffold_transcript(
        &Command::new(&host).arg("--isolate").arg(&plugin).output().unwrap(),
        "hello-tomada",
        "in a child process",
    );
    // The host records its contract: `tomada diff` compares them.
    let out = diff(&plugin, &host);
    assert_eq!(stdout(&out), "fit: hello_tomada_contract::Greeter 1.0 fits hello_tomada_contract::Greeter 1.0\n");

    let out = cargo_in(&project, &["test"]);
    assert!(stdout(&out).contains("test result: ok. 3 passed"), "{}", stdout(&out));
}

/// Without `--path`, tomada comes from crates.io at this version. It is not published,
/// so the manifests are checked by building them with tomada's crates patched in
/// from this checkout, as crates.io would serve them.
#[test]
fn tomada_new_with_crates_io_versions_builds() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("versioned");
    let out = tomada(&["new".as_ref(), project.as_os_str()]);
    assert!(out.status.success(), "{out:?}");
    let root = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(root.contains(&format!("tomada = \"{version}\"\ntomada-host = \"{version}\"\n")), "{root}");
    assert!(!root.contains("path = \"/"), "{root}");
    assert!(!project.join("Cargo.lock").exists());

    std::fs::copy(workspace_root().join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let patch = |name: &str, dir: &str| {
        let path = workspace_root().join(dir);
        format!("patch.crates-io.{name}.path={:?}", path.to_str().unwrap())
    };
    let (tomada, host) = (patch("tomada", "crates/tomada"), patch("tomada-host", "crates/host"));
    cargo_in(&project, &["build", "--config", &tomada, "--config", &host]);
    let built = workspace_root().join("target/scaffold/debug");
    let host = built.join(format!("versioned-host{}", std::env::consts::EXE_SUFFIX));
    scaffold_transcript(&Command::new(&host).output().unwrap(), "versioned", "in this process");
}

/// `tomada new` refuses a directory that holds anything, a name that cannot name
/// crates, and a `--path` that is not a tomada checkout; and writes nothing then.
#[test]
fn tomada_new_refuses_what_it_cannot_make() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep.txt"), "mine").unwrap();
    let out = tomada(&["new".as_ref(), full.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists and is not empty"), "{out:?}");
    assert_eq!(std::fs::read_dir(&full).unwrap().count(), 1);

    let bad = dir.path().join("Bad Name");
    let out = tomada(&["new".as_ref(), bad.as_os_str()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot name the project's crates"), "{out:?}");
    assert!(!bad.exists());

    let elsewhere = dir.path().join("elsewhere");
    let out = tomada(&["new".as_ref(), elsewhere.as_os_str(), "--path".as_ref(), dir.path().as_os_str()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a tomada checkout"), "{out:?}");
    assert!(!elsewhere.exists());
}
