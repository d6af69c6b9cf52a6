//! The settings file: `RawConfig::parse_str` on arbitrary text, then `Config::resolve` on what
//! it accepted (every value parser: durations, tuples, lists, URLs, paths, numbers). Errors
//! must render (they go to the admin's terminal).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use xcauth_core::config::{Config, RawConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let raw = match RawConfig::parse_str(text, Path::new("/etc/xcauth.conf")) {
        Ok(raw) => raw,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    match Config::resolve(&[raw]) {
        Ok(config) => {
            let _ = config.require_backend();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
