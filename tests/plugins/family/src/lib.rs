//! Fixture: one library, a family of plugins. Three exports over two contracts:
//! `hello` and `hola` implement `pluginapi::Greeter`, `memory` implements
//! `kv_api::Store`. `hola` and `memory` read the host's context in their
//! constructors: `hola` greets with the configured text, `memory` starts with the
//! entries passed as a `Vec<(String, Vec<u8>)>` value.
//!
//! Both greeters log each greeting (a `log` record, and a `tracing` event with fields
//! inside a span), so a host sees which export logged what; greeting `forge` makes
//! them log hostile text (control characters and a forged log line).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use kv_api::{Entry, Kind, Meta, Store, StoreError};
use pluginapi::Greeter;

/// The first export: greets in Portuguese, with no context.
#[derive(Default)]
struct Hello;

impl Greeter for Hello {
    fn greet(&self, name: &str) -> String {
        report(name);
        format!("Olá, {name}")
    }
}

/// Logs a greeting of `name`: a `log` record, and a `tracing` event with fields in a
/// span with fields. Greeting `forge` logs text meant to forge the host's log lines.
fn report(name: &str) {
    if name == "forge" {
        log::warn!("done\r\x1b[2K\x07\n2099-01-01 INFO host: all plugins verified");
        tracing::warn!(note = "\x1b]0;owned\x07\n2099-01-01 INFO host: forged", "\x1b[2Jcleared\r");
        return;
    }
    log::info!("greeting {name}");
    let span = tracing::info_span!("greet", chars = name.chars().count());
    let _entered = span.enter();
    tracing::info!(who = name, loud = name.ends_with('!'), "greeted");
}

/// Greets with the host's configured greeting (`Hola` without one); says which
/// process made it, so tests see where it runs.
struct Hola {
    greeting: String,
    pid: u32,
}

impl Hola {
    fn new(context: &tomada::Context) -> Self {
        let greeting = context.as_str().filter(|s| !s.is_empty()).unwrap_or("Hola").to_owned();
        log::info!("made to say {greeting}");
        Hola { greeting, pid: std::process::id() }
    }
}

impl Greeter for Hola {
    fn greet(&self, name: &str) -> String {
        report(name);
        format!("{}, {name} (pid {})", self.greeting, self.pid)
    }
}

/// A store whose first entries are the host's context, if it passed any.
struct Memory {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl Memory {
    fn new(context: &tomada::Context) -> Self {
        let seed: Vec<(String, Vec<u8>)> = context.value().unwrap_or_default();
        Memory { entries: Mutex::new(seed.into_iter().collect()) }
    }

    fn entry(key: &str, value: &[u8]) -> Entry {
        Entry {
            key: key.to_owned(),
            value: value.to_vec(),
            meta: Meta { kind: Kind::Blob, created: 0, owner: None },
            tags: Vec::new(),
            previous: None,
        }
    }
}

impl Store for Memory {
    fn put(&self, entry: Entry) -> Result<Option<Box<Entry>>, StoreError> {
        let previous = self.entries.lock().unwrap().insert(entry.key.clone(), entry.value);
        Ok(previous.map(|v| Box::new(Memory::entry(&entry.key, &v))))
    }

    fn get(&self, key: &str) -> Result<Entry, StoreError> {
        let entries = self.entries.lock().unwrap();
        let value = entries.get(key).ok_or_else(|| StoreError::NotFound(key.to_owned()))?;
        Ok(Memory::entry(key, value))
    }

    fn keys(&self) -> Vec<String> {
        self.entries.lock().unwrap().keys().cloned().collect()
    }

    fn put_many(&self, items: Vec<(String, Vec<u8>)>) -> Result<u32, StoreError> {
        let mut entries = self.entries.lock().unwrap();
        Ok(items.into_iter().filter(|(k, v)| entries.insert(k.clone(), v.clone()).is_none()).count() as u32)
    }

    fn dump(&self) -> HashMap<String, Vec<u8>> {
        self.entries.lock().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    fn by_kind(&self) -> BTreeMap<Kind, BTreeSet<String>> {
        BTreeMap::from([(Kind::Blob, self.entries.lock().unwrap().keys().cloned().collect())])
    }

    fn tagged(&self, _tags: &[String]) -> HashSet<String> {
        HashSet::new()
    }

    fn address(&self) -> [u8; 4] {
        [10, 0, 0, 3]
    }

    fn set_read_only(&self, _read_only: bool) {}

    fn echo(&self, entries: Vec<Entry>) -> Vec<Entry> {
        entries
    }
}

tomada::export! {
    Hello as Greeter; name = "hello", description = "says olá";
    Hola as Greeter = Hola::new(&tomada::context()); name = "hola", version = "1.1.0", description = "says the configured greeting";
    Memory as Store = Memory::new(&tomada::context()); name = "memory", version = "2.0.0", description = "an in-memory store";
}
