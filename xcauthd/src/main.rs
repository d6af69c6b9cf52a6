//! xcauthd (in progress)
fn main() {}
