//! Test support for the xcauth workspace: the JSXC backend double ([`double`]).

pub mod double;
pub mod pam_support;
pub mod support;
pub mod tls;
