//! Builds the example's plugin and runs the example's host on it, as a reader would.

#![allow(missing_docs)]

use std::process::Command;

use tomada_test_support::Build;

#[test]
fn callbacks_kept_services_objects_and_log_records() {
    let plugin = Build::new("host-services-plugin").cdylib();
    let out = Command::new(env!("CARGO_BIN_EXE_host-services-host")).arg(&plugin).output().expect("run the host");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
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
         cursor: call Ana\n"
    );
}
