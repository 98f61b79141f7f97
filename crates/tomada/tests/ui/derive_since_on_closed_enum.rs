#[derive(tomada::Abi)]
pub enum State {
    Open,
    #[tomada(since = 1)]
    Shipped(String),
}

fn main() {}
