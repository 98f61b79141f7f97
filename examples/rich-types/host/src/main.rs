//! The host of the `rich-types` example: `rich-types-host PLUGIN` loads a
//! [`Catalog`] plugin and prints what it answers. Every call returns
//! `Result<_, CallError>` on top of the trait's own result type.

use std::error::Error;
use std::process::ExitCode;

use rich_types_api::{Catalog, Item, OrderError, Query};

// Optional: lets `String`s and `Vec`s cross the boundary without a copy.
tomada_host::tomada::global_allocator!();

fn show(item: &Item) -> String {
    let stock = item.stock.map_or("unlimited".to_owned(), |n| format!("{n} left"));
    format!("{} ({}.{:02}, {}, tags: {})", item.name, item.price / 100, item.price % 100, stock, item.tags.join("+"))
}

fn run(path: &str) -> Result<(), Box<dyn Error>> {
    let catalog = tomada_host::load::<dyn Catalog>(path)?;
    println!("loaded {} {}", catalog.info().name, catalog.info().version);

    // An enum with data goes in, a `Vec` of structs comes out.
    for query in [Query::Tagged("gift".into()), Query::PriceBetween { min: 1_000, max: 3_000 }] {
        let names: Vec<String> = catalog.find(query.clone())?.iter().map(|i| i.name.clone()).collect();
        println!("find {query:?}: {}", names.join(", "));
    }
    // `Option<Item>`, a borrowed `&str` argument.
    match catalog.get("mug")? {
        Some(item) => println!("get mug: {}", show(&item)),
        None => println!("get mug: none"),
    }
    println!("get sofa: {:?}", catalog.get("sofa")?);

    // A `Vec` of tuples in, a `Result` with an error enum out.
    let order = vec![("mug".to_owned(), 2), ("kettle".to_owned(), 1)];
    println!("order 2 mug + 1 kettle: {:?}", catalog.order(order)?);
    match catalog.order(vec![("lamp".to_owned(), 5)])? {
        Ok(total) => println!("order 5 lamp: {total}"),
        Err(OrderError::OutOfStock { name, wanted, left }) => {
            println!("order {wanted} {name}: refused, only {left} left")
        }
        Err(other) => println!("order 5 lamp: refused: {other:?}"),
    }
    println!("order 1 sofa: {:?}", catalog.order(vec![("sofa".to_owned(), 1)])?);
    println!("get kettle: {}", catalog.get("kettle")?.map(|i| show(&i)).unwrap_or_default());

    // A `HashMap` (sorted here for a stable output) and an optional tuple.
    let mut counts: Vec<(String, u32)> = catalog.tag_counts()?.into_iter().collect();
    counts.sort();
    let counts: Vec<String> = counts.iter().map(|(tag, n)| format!("{tag}={n}")).collect();
    println!("tags: {}", counts.join(" "));
    if let Some((cheapest, dearest)) = catalog.extremes()? {
        println!("cheapest: {}; dearest: {}", cheapest.name, dearest.name);
    }
    Ok(())
}

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: rich-types-host PLUGIN (e.g. target/debug/librich_types_plugin.so)");
        return ExitCode::from(2);
    };
    match run(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
