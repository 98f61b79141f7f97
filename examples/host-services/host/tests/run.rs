//! Builds the example's plugin and runs the example's host on it, as a reader would.

#![allow(missing_docs)]

use std::process::Command;

use tomada_test_support::Build;

fn run(isolate: bool) -> String {
    let plugin = Build::new("host-services-plugin").cdylib();
    let mut host = Command::new(env!("CARGO_BIN_EXE_host-services-host"));
    host.arg(&plugin);
    if isolate {
        host.arg("--isolate");
    }
    let out = host.output().expect("run the host");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn callbacks_kept_services_objects_and_log_records() {
    assert_eq!(
        run(false),
        "host: the plugin asks for `style`\n\
         log INFO plugin::host-services-plugin: note 1 added\n\
         host: the plugin asks for `style`\n\
         log INFO plugin::host-services-plugin: note 2 added\n\
         host: 2 notes\n\
         log WARN plugin::host-services-plugin: nothing to publish to: attach a host first\n\
         host: published 0\n\
         log DEBUG plugin::host-services-plugin: a host service attached\n\
         screen: BUY MILK\n\
         screen: call Ana\n\
         host: published 2\n\
         host: the plugin let go of the screen\n\
         cursor: BUY MILK\n\
         cursor: call Ana\n\
         host: done\n"
    );
}

/// Isolated, callbacks, kept services, objects and log records travel over the
/// channel: the same lines, in the same order (the instance goes with its handle, the
/// process lives on for the cursor).
///
/// The order does not depend on scheduling: dropping the `Plugin` waits until the
/// plugin's process has dropped the instance, and the instance's release of the screen
/// reaches the host before that answer (both are written by the thread that dropped
/// it), so "let go of the screen" is printed before `drop` returns. (Before, the
/// instance was dropped after the host had moved on, and the release was read at the
/// host's next call, before or after the cursor's lines, as the threads ran.)
#[test]
fn the_same_in_a_child_process() {
    assert_eq!(run(true), run(false));
}
