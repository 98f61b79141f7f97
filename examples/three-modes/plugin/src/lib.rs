//! Example plugin: a word counter. It does not know whether it runs in the host's
//! process, in a child process or on a server: the host chooses.

use std::collections::BTreeMap;

use three_modes_api::{Each, Words, tomada};

/// The plugin's one instance.
#[derive(Default)]
pub struct Counter;

impl Words for Counter {
    fn count(&self, text: &str) -> Vec<(String, u64)> {
        let mut counts = BTreeMap::<String, u64>::new();
        for word in text.split_whitespace() {
            *counts.entry(word.to_lowercase()).or_default() += 1;
        }
        let mut counts: Vec<(String, u64)> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        counts
    }

    fn process(&self) -> u32 {
        std::process::id()
    }

    fn each(&self, text: &str, each: &dyn Each) -> u64 {
        let mut sent = 0;
        for word in text.split_whitespace() {
            each.word(word);
            sent += 1;
        }
        sent
    }

    fn crash(&self) {
        std::process::abort()
    }
}

tomada::export!(Counter as Words);
