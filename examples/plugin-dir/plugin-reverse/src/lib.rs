//! A filter plugin of the `plugin-dir` example: reverses the order of words.

use plugin_dir_api::{Filter, tomada};

#[derive(Default)]
struct Reverse;

impl Filter for Reverse {
    fn apply(&self, text: &str) -> String {
        text.split_whitespace().rev().collect::<Vec<_>>().join(" ")
    }
}

tomada::export!(Reverse as Filter; name = "reverse");
