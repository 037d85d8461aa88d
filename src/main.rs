//! The `cairn` binary. Until the daemon issue lands it only reports its version:
//! `cargo run -- --version`.

fn main() {
    println!("cairn {}", cairn::VERSION);
}
