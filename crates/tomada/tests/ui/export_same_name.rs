#[tomada::contract(abi = 1, name = "demo::Greeter")]
pub trait Greeter {
    fn greet(&self, name: &str) -> String;
}

#[derive(Default)]
struct Hello;
impl Greeter for Hello {
    fn greet(&self, name: &str) -> String {
        format!("hello {name}")
    }
}

#[derive(Default)]
struct Hola;
impl Greeter for Hola {
    fn greet(&self, name: &str) -> String {
        format!("hola {name}")
    }
}

// Both default to the crate's name.
tomada::export! {
    Hello as Greeter;
    Hola as Greeter;
}

fn main() {}
