/// Not a boundary type.
pub struct Secret(pub u64);

#[derive(tomada::Abi)]
pub struct Config {
    pub name: String,
    pub secret: Secret,
    pub tags: Vec<String>,
}

#[derive(tomada::Abi)]
pub enum Event {
    Started,
    Leaked(Secret),
}

fn main() {}
