//! The plugin of the `rich-types` example: a catalogue of four items, written as any
//! Rust implementation of the trait. No `unsafe`, no FFI types.

use std::collections::HashMap;
use std::sync::Mutex;

use rich_types_api::{Catalog, Item, OrderError, Query, tomada};

/// The shop. Contract methods take `&self` (a plugin is shared between threads), so
/// what changes sits behind a `Mutex`.
struct Shop {
    items: Mutex<Vec<Item>>,
}

fn item(name: &str, price: u64, tags: &[&str], stock: Option<u32>) -> Item {
    Item { name: name.into(), price, tags: tags.iter().map(|t| t.to_string()).collect(), stock }
}

impl Default for Shop {
    fn default() -> Self {
        let items = vec![
            item("kettle", 2_500, &["kitchen"], Some(3)),
            item("mug", 800, &["kitchen", "gift"], Some(10)),
            item("e-book", 1_200, &["gift", "digital"], None),
            item("lamp", 4_000, &["home"], Some(1)),
        ];
        Shop { items: Mutex::new(items) }
    }
}

impl Catalog for Shop {
    fn find(&self, query: Query) -> Vec<Item> {
        let items = self.items.lock().unwrap();
        let matches = |i: &&Item| match &query {
            Query::All => true,
            Query::Tagged(tag) => i.tags.contains(tag),
            Query::PriceBetween { min, max } => (*min..=*max).contains(&i.price),
        };
        items.iter().filter(matches).cloned().collect()
    }

    fn get(&self, name: &str) -> Option<Item> {
        self.items.lock().unwrap().iter().find(|i| i.name == name).cloned()
    }

    fn order(&self, lines: Vec<(String, u32)>) -> Result<u64, OrderError> {
        let mut items = self.items.lock().unwrap();
        // Check every line before taking anything from stock.
        let mut total = 0;
        for (name, wanted) in &lines {
            let item = items.iter().find(|i| &i.name == name).ok_or_else(|| OrderError::Unknown(name.clone()))?;
            if let Some(left) = item.stock.filter(|left| left < wanted) {
                return Err(OrderError::OutOfStock { name: name.clone(), wanted: *wanted, left });
            }
            total += item.price * u64::from(*wanted);
        }
        for (name, wanted) in &lines {
            if let Some(stock) = items.iter_mut().find(|i| &i.name == name).and_then(|i| i.stock.as_mut()) {
                *stock -= wanted;
            }
        }
        Ok(total)
    }

    fn tag_counts(&self) -> HashMap<String, u32> {
        let mut counts = HashMap::new();
        for tag in self.items.lock().unwrap().iter().flat_map(|i| &i.tags) {
            *counts.entry(tag.clone()).or_default() += 1;
        }
        counts
    }

    fn extremes(&self) -> Option<(Item, Item)> {
        let items = self.items.lock().unwrap();
        let cheapest = items.iter().min_by_key(|i| i.price)?;
        let dearest = items.iter().max_by_key(|i| i.price)?;
        Some((cheapest.clone(), dearest.clone()))
    }
}

// The plugin's name, version and description come from this crate's Cargo.toml.
tomada::export!(Shop as Catalog);
