//! Link flags for the PAM module.
//!
//! `-z nodelete`: libpam `dlclose`s every module at `pam_end`. A Rust cdylib can leave thread
//! locals, a panic hook or the `log` facade's logger pointing into its code, and unmapping it
//! then crashes the host later (rust-lang/rust#91979, #59629). Keeping the library resident
//! after its first load makes every later `dlopen` of the same path a cheap reference count.
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    println!("cargo:rerun-if-changed=build.rs");
}
