#[derive(tomada::Abi)]
pub enum State {
    Open,
    #[tomada(other)]
    Unknown(String),
}

fn main() {}
