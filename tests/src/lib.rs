//! Test support for the xcauth workspace: the JSXC backend double ([`double`]), helpers for
//! the end-to-end tests ([`support`], [`activation`], [`machine`], [`pam_support`], [`tls`]),
//! a real Nextcloud ([`nextcloud`]) with OpenLDAP behind it ([`ldap`]) and the worker of the
//! multi-process database test ([`db_stress`]).

pub mod activation;
pub mod db_stress;
pub mod double;
pub mod ldap;
pub mod machine;
pub mod nextcloud;
pub mod pam_support;
pub mod support;
pub mod tls;
