//! The postfix framing decoder on arbitrary input (see framing.rs for what is checked).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xcauth_core::codec::Framing;

#[path = "framing.rs"]
mod framing;

fuzz_target!(|data: &[u8]| framing::run(Framing::Postfix, data));
