use std::collections::HashMap;

#[tomada::contract(abi = 1)]
pub trait Registry {
    fn register(&self, entries: HashMap<String, u32>) -> bool;
}

fn main() {}
