//! An indexer that calls back into host services and hands out cursors.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use indexer_api::{Cursor, Host, Indexer, Level, Visitor};

#[derive(Default)]
struct Index {
    words: Mutex<Vec<String>>,
    attached: Mutex<Option<Box<dyn Host>>>,
    /// Set by `sabotage`: shared with every cursor this instance made.
    sabotaged: Arc<AtomicBool>,
}

struct Words {
    words: Vec<String>,
    at: AtomicUsize,
    sabotaged: Arc<AtomicBool>,
}

/// Panics if `sabotaged` is set: the plugin failing on purpose.
fn check(sabotaged: &AtomicBool, method: &str) {
    assert!(!sabotaged.load(Ordering::SeqCst), "sabotaged: `{method}` fails on purpose");
}

impl Words {
    fn new(words: Vec<String>, sabotaged: &Arc<AtomicBool>) -> Self {
        Words { words, at: AtomicUsize::new(0), sabotaged: Arc::clone(sabotaged) }
    }
}

impl Cursor for Words {
    fn next(&self) -> Option<String> {
        check(&self.sabotaged, "Cursor::next");
        let i = self.at.fetch_add(1, Ordering::Relaxed);
        self.words.get(i).cloned()
    }
    fn fork(&self) -> Box<dyn Cursor> {
        check(&self.sabotaged, "Cursor::fork");
        let at = self.at.load(Ordering::Relaxed).min(self.words.len());
        Box::new(Words::new(self.words[at..].to_vec(), &self.sabotaged))
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

    fn check(&self, method: &str) {
        check(&self.sabotaged, method);
    }

    fn cursor(&self, words: Vec<String>) -> Box<dyn Cursor> {
        Box::new(Words::new(words, &self.sabotaged))
    }
}

#[tomada::implement]
impl Indexer for Index {
    fn index(&self, doc: &str, host: &dyn Host) -> u64 {
        self.check("Indexer::index");
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
        self.check("Indexer::open");
        self.cursor(self.matching(prefix))
    }

    fn attach(&self, host: Box<dyn Host>) {
        self.check("Indexer::attach");
        host.log(Level::Info, "attached");
        *self.attached.lock().unwrap() = Some(host);
    }

    fn flush(&self) -> u64 {
        self.check("Indexer::flush");
        let attached = self.attached.lock().unwrap();
        let host = attached.as_ref().expect("flush needs an attached host");
        let n = self.words.lock().unwrap().len() as u64;
        host.log(Level::Warn, &format!("flushing {n} words"));
        n
    }

    fn share(&self, host: Arc<dyn Host>) -> Arc<dyn Cursor> {
        self.check("Indexer::share");
        let prefix = host.config("prefix").unwrap_or_default();
        let kept = Arc::clone(&host);
        kept.log(Level::Debug, "shared");
        Arc::new(Words::new(self.matching(&prefix), &self.sabotaged))
    }

    fn walk(&self, visitor: &dyn Visitor) -> u64 {
        self.check("Indexer::walk");
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
        self.check("Indexer::count");
        self.words.lock().unwrap().len() as u64
    }

    fn cursors(&self) -> Vec<Box<dyn Cursor>> {
        self.check("Indexer::cursors");
        let words = self.words.lock().unwrap().clone();
        words.into_iter().map(|w| self.cursor(vec![w])).collect()
    }

    fn detach(&self) -> bool {
        self.check("Indexer::detach");
        self.attached.lock().unwrap().take().is_some()
    }

    fn find(&self, word: &str) -> Option<Box<dyn Cursor>> {
        self.check("Indexer::find");
        let found = self.words.lock().unwrap().iter().find(|w| *w == word).cloned();
        found.map(|w| self.cursor(vec![w]))
    }

    fn open_strict(&self, prefix: &str) -> Result<Box<dyn Cursor>, String> {
        self.check("Indexer::open_strict");
        let words = self.matching(prefix);
        if words.is_empty() { Err(format!("no word starts with `{prefix}`")) } else { Ok(self.cursor(words)) }
    }

    fn drain(&self, cursor: Box<dyn Cursor>) -> Vec<String> {
        self.check("Indexer::drain");
        std::iter::from_fn(|| cursor.next()).collect()
    }

    fn peek(&self, cursor: &dyn Cursor) -> Option<String> {
        self.check("Indexer::peek");
        cursor.next()
    }

    async fn open_later(&self, prefix: &str) -> Box<dyn Cursor> {
        self.check("Indexer::open_later");
        self.cursor(self.matching(prefix))
    }

    fn sabotage(&self) {
        self.sabotaged.store(true, Ordering::SeqCst);
    }
}

tomada::export!(Index as Indexer);
