//! An indexer that calls back into host services and hands out cursors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use indexer_api::{Cursor, Host, Indexer, Level, Visitor};

#[derive(Default)]
struct Index {
    words: Mutex<Vec<String>>,
    attached: Mutex<Option<Box<dyn Host>>>,
}

struct Words {
    words: Vec<String>,
    at: AtomicUsize,
}

impl Cursor for Words {
    fn next(&self) -> Option<String> {
        let i = self.at.fetch_add(1, Ordering::Relaxed);
        self.words.get(i).cloned()
    }
    fn fork(&self) -> Box<dyn Cursor> {
        let at = self.at.load(Ordering::Relaxed).min(self.words.len());
        Box::new(Words { words: self.words[at..].to_vec(), at: AtomicUsize::new(0) })
    }
}

/// Says goodbye through the host service it still holds: a plugin's code calling the
/// host while it is being dropped (isolated: while the runner handles the release).
impl Drop for Index {
    fn drop(&mut self) {
        let attached = self.attached.get_mut().map(Option::take).unwrap_or_default();
        if let Some(host) = attached {
            host.log(Level::Info, "dropped with the plugin");
        }
    }
}

impl Index {
    fn matching(&self, prefix: &str) -> Vec<String> {
        self.words.lock().unwrap().iter().filter(|w| w.starts_with(prefix)).cloned().collect()
    }
}

impl Indexer for Index {
    fn index(&self, doc: &str, host: &dyn Host) -> u64 {
        let lower = host.config("lowercase").is_some_and(|v| v == "yes");
        let mut added = 0;
        for word in doc.split_whitespace() {
            let word = if lower { word.to_lowercase() } else { word.to_owned() };
            host.log(Level::Debug, &format!("indexing `{word}`"));
            self.words.lock().unwrap().push(word);
            added += 1;
        }
        host.log(Level::Info, &format!("indexed {added} words"));
        // Through the `log` crate, as any library logs: it reaches the host's logger.
        log::info!("indexed {added} words");
        log::trace!("a trace record");
        added
    }

    fn open(&self, prefix: &str) -> Box<dyn Cursor> {
        Box::new(Words { words: self.matching(prefix), at: AtomicUsize::new(0) })
    }

    fn attach(&self, host: Box<dyn Host>) {
        host.log(Level::Info, "attached");
        *self.attached.lock().unwrap() = Some(host);
    }

    fn flush(&self) -> u64 {
        let attached = self.attached.lock().unwrap();
        let host = attached.as_ref().expect("flush needs an attached host");
        let n = self.words.lock().unwrap().len() as u64;
        host.log(Level::Warn, &format!("flushing {n} words"));
        n
    }

    fn share(&self, host: Arc<dyn Host>) -> Arc<dyn Cursor> {
        let prefix = host.config("prefix").unwrap_or_default();
        let kept = Arc::clone(&host);
        kept.log(Level::Debug, "shared");
        Arc::new(Words { words: self.matching(&prefix), at: AtomicUsize::new(0) })
    }

    fn walk(&self, visitor: &dyn Visitor) -> u64 {
        let words = self.words.lock().unwrap().clone();
        let mut visited = 0;
        for word in &words {
            visited += 1;
            if !visitor.visit(word, self) {
                break;
            }
        }
        visited
    }

    fn count(&self) -> u64 {
        self.words.lock().unwrap().len() as u64
    }

    fn cursors(&self) -> Vec<Box<dyn Cursor>> {
        let words = self.words.lock().unwrap().clone();
        words
            .into_iter()
            .map(|w| Box::new(Words { words: vec![w], at: AtomicUsize::new(0) }) as Box<dyn Cursor>)
            .collect()
    }

    fn detach(&self) -> bool {
        self.attached.lock().unwrap().take().is_some()
    }
}

tomada::export!(Index as Indexer);
