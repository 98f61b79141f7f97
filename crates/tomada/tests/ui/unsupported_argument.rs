/// Not a boundary type: it does not `#[derive(tomada::Abi)]`.
pub struct Config {
    pub name: String,
}

#[tomada::contract(abi = 1)]
pub trait Registry {
    fn register(&self, name: &str, config: Config) -> bool;
    fn count(&self) -> u64;
}

fn main() {}
