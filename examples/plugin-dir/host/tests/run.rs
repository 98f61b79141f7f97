//! Builds the example's plugins, puts them in a directory with libraries that are
//! not filters, and runs the example's host on it, as a reader would.

#![allow(missing_docs)]

use std::process::Command;

use tomada_test_support::{Build, copy_to};

#[test]
fn every_filter_in_the_directory_runs_in_file_name_order_and_the_rest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    copy_to(&Build::new("plugin-dir-shout").cdylib(), dir.path(), "libshout.so");
    copy_to(&Build::new("plugin-dir-reverse").cdylib(), dir.path(), "libreverse.so");
    // A plugin of another contract (the seed's greeter), a file that is no library,
    // and files that are not candidates at all.
    copy_to(&Build::new("greeter").cdylib(), dir.path(), "libgreeter.so");
    std::fs::write(dir.path().join("libbroken.so"), b"not a library").unwrap();
    std::fs::write(dir.path().join("README.txt"), b"not a candidate").unwrap();
    std::fs::write(dir.path().join(".hidden.so"), b"not a candidate").unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_plugin-dir-host")).arg(dir.path()).output().expect("run the host");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "loaded reverse 1.0.0 from libreverse.so: Example filter: the words in reverse order\n\
         loaded shout 1.0.0 from libshout.so: Example filter: upper case, with feeling\n\
         input: hello plugin world\n\
         after reverse: world plugin hello\n\
         after shout: WORLD PLUGIN HELLO!\n"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].starts_with("skipped libbroken.so: "), "{stderr}");
    assert!(lines[1].starts_with("skipped libgreeter.so: "), "{stderr}");
    assert!(lines[1].contains("pluginapi::Greeter") && lines[1].contains("plugin_dir_api::Filter"), "{stderr}");
}

#[test]
fn a_directory_without_filters_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    copy_to(&Build::new("greeter").cdylib(), dir.path(), "libgreeter.so");
    let out = Command::new(env!("CARGO_BIN_EXE_plugin-dir-host")).arg(dir.path()).output().expect("run the host");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().last().unwrap_or_default().starts_with("error: no filter plugin in "), "{stderr}");
}
