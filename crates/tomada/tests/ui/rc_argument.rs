use std::rc::Rc;

#[tomada::contract(abi = 1)]
pub trait Cache {
    fn put(&self, value: Rc<Vec<u8>>);
}

fn main() {}
