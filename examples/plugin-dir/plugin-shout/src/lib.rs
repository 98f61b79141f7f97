//! A filter plugin of the `plugin-dir` example: shouts.

use plugin_dir_api::{Filter, tomada};

#[derive(Default)]
struct Shout;

impl Filter for Shout {
    fn apply(&self, text: &str) -> String {
        format!("{}!", text.to_uppercase())
    }
}

// The name the host sees; version and description still come from Cargo.toml.
tomada::export!(Shout as Filter; name = "shout");
