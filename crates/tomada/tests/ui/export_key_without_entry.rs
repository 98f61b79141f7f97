#[tomada::contract(abi = 1, name = "demo::Greeter")]
pub trait Greeter {
    fn greet(&self, name: &str) -> String;
}

tomada::export! {
    name = "hello";
}

fn main() {}
