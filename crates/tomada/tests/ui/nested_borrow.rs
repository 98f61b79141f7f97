#[tomada::contract(abi = 1)]
pub trait Finder {
    fn find(&self, key: Option<&str>) -> bool;
}

fn main() {}
