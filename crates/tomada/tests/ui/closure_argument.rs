#[tomada::contract(abi = 1)]
pub trait Events {
    fn subscribe(&self, on_event: Box<dyn Fn(&str, &[u8])>);
}

fn main() {}
