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

tomada::export! {
    Hello as Greeter; name = "hello", colour = "blue";
}

fn main() {}
