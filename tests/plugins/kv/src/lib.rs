//! An in-memory key-value store implementing `kv_api::Store`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use kv_api::{CAPACITY, Entry, Kind, Store, StoreError};

#[derive(Default)]
struct Memory {
    entries: Mutex<BTreeMap<String, Entry>>,
    read_only: AtomicBool,
}

impl Memory {
    fn writable(&self) -> Result<(), StoreError> {
        if self.read_only.load(Ordering::Relaxed) { Err(StoreError::ReadOnly) } else { Ok(()) }
    }
}

impl Store for Memory {
    fn put(&self, mut entry: Entry) -> Result<Option<Box<Entry>>, StoreError> {
        self.writable()?;
        if entry.key.is_empty() {
            return Err(StoreError::Other { code: 22, message: "an empty key".into() });
        }
        let mut entries = self.entries.lock().unwrap();
        if !entries.contains_key(&entry.key) && entries.len() >= CAPACITY {
            return Err(StoreError::Full);
        }
        let previous = entries.remove(&entry.key).map(|mut p| {
            p.previous = None;
            Box::new(p)
        });
        entry.previous = previous.clone();
        entries.insert(entry.key.clone(), entry);
        Ok(previous)
    }

    fn get(&self, key: &str) -> Result<Entry, StoreError> {
        self.entries.lock().unwrap().get(key).cloned().ok_or_else(|| StoreError::NotFound(key.to_owned()))
    }

    fn keys(&self) -> Vec<String> {
        self.entries.lock().unwrap().keys().cloned().collect()
    }

    fn put_many(&self, items: Vec<(String, Vec<u8>)>) -> Result<u32, StoreError> {
        let mut new = 0;
        for (key, value) in items {
            let entry = Entry {
                key,
                value,
                meta: kv_api::Meta { kind: Kind::Text, created: 0, owner: None },
                tags: Vec::new(),
                previous: None,
            };
            if self.put(entry)?.is_none() {
                new += 1;
            }
        }
        Ok(new)
    }

    fn dump(&self) -> HashMap<String, Vec<u8>> {
        self.entries.lock().unwrap().iter().map(|(k, e)| (k.clone(), e.value.clone())).collect()
    }

    fn by_kind(&self) -> BTreeMap<Kind, BTreeSet<String>> {
        let mut out: BTreeMap<Kind, BTreeSet<String>> = BTreeMap::new();
        for (k, e) in self.entries.lock().unwrap().iter() {
            out.entry(e.meta.kind).or_default().insert(k.clone());
        }
        out
    }

    fn tagged(&self, tags: &[String]) -> HashSet<String> {
        let entries = self.entries.lock().unwrap();
        entries.values().filter(|e| e.tags.iter().any(|t| tags.contains(t))).map(|e| e.key.clone()).collect()
    }

    fn address(&self) -> [u8; 4] {
        [127, 0, 0, 1]
    }

    fn set_read_only(&self, read_only: bool) {
        self.read_only.store(read_only, Ordering::Relaxed);
    }

    fn echo(&self, mut entries: Vec<Entry>) -> Vec<Entry> {
        for e in &mut entries {
            e.key.push('!');
        }
        entries
    }
}

tomada::export!(Memory as Store);
