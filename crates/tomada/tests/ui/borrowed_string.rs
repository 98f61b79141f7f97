#[tomada::contract(abi = 1)]
pub trait Greeter {
    fn greet(&self, name: &String) -> String;
}

fn main() {}
