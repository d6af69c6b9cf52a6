//! A backend's endpoint URL, parsed once: from the configuration's `url=` when it is read,
//! from a `domains` row's `authurl` when the row is read. Nothing parses it again per request.

use std::fmt;

use reqwest::Url;

/// A backend's endpoint URL: absolute, `http` or `https`, with a host, without a user name or
/// password. Whether it is plain http to a host other than loopback is decided when it is
/// parsed ([`BackendUrl::is_insecure`]).
#[derive(Clone, PartialEq, Eq)]
pub struct BackendUrl {
    url: Url,
    insecure: bool,
}

impl BackendUrl {
    /// Parses `text`, or says why it is no usable backend URL.
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        // Credentials in the URL would be logged with it (and are not how the backends
        // authenticate); refuse them without echoing the text.
        let authority = text.split_once("://").map_or(text, |(_, rest)| rest);
        let authority = authority.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(UrlError::Credentials);
        }
        let url = Url::parse(text).map_err(|e| UrlError::Invalid {
            text: text.to_owned(),
            cause: e.to_string(),
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(UrlError::Scheme {
                text: text.to_owned(),
                scheme: url.scheme().to_owned(),
            });
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlError::NoHost {
                text: text.to_owned(),
            });
        }
        let insecure = url.scheme() == "http" && !is_loopback(&url);
        Ok(Self { url, insecure })
    }

    /// The URL as requests are sent to it (normalised: a lower-case host, IDNA, a path).
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The parsed URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// True for plain `http` to a host that is not loopback (`127.0.0.0/8`, `::1`,
    /// `localhost`): the JSXC replies are not signed, so anyone on the network path could
    /// answer "success" for any password.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }
}

fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl fmt::Display for BackendUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for BackendUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BackendUrl").field(&self.as_str()).finish()
    }
}

/// Why a text is no usable backend URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    /// It holds a user name or password (not repeated here: it may be a real one).
    Credentials,
    /// It does not parse as an absolute URL.
    Invalid {
        /// The text.
        text: String,
        /// The URL parser's reason.
        cause: String,
    },
    /// Neither `http` nor `https`.
    Scheme {
        /// The text.
        text: String,
        /// Its scheme.
        scheme: String,
    },
    /// No host.
    NoHost {
        /// The text.
        text: String,
    },
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::Credentials => {
                f.write_str("the URL must not contain a user name or password (user:pass@host)")
            }
            UrlError::Invalid { text, cause } => write!(f, "'{text}' is not a valid URL: {cause}"),
            UrlError::Scheme { text, scheme } => write!(
                f,
                "'{text}' is not an http or https URL (scheme '{scheme}' is not supported)"
            ),
            UrlError::NoHost { text } => write!(f, "'{text}' has no host"),
        }
    }
}

impl std::error::Error for UrlError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_insecure_except_to_loopback() {
        let insecure = |t: &str| BackendUrl::parse(t).unwrap().is_insecure();
        assert!(insecure("http://cloud.example.org/x"));
        assert!(insecure("http://192.0.2.1/x"));
        assert!(insecure("http://[2001:db8::1]/x"));
        assert!(!insecure("https://cloud.example.org/x"));
        assert!(!insecure("http://localhost/x"));
        assert!(!insecure("http://LOCALHOST:8080/x"));
        assert!(!insecure("http://127.0.0.1/x"));
        assert!(!insecure("http://127.3.2.1/x"));
        assert!(!insecure("http://[::1]:8080/x"));
    }

    #[test]
    fn credentials_are_refused_without_echoing_them() {
        let e = BackendUrl::parse("https://admin:hunter2@cloud.example.org/x").unwrap_err();
        assert_eq!(e, UrlError::Credentials);
        assert!(!e.to_string().contains("hunter2"), "{e}");
        // An @ after the authority is part of the path or query, not a credential.
        assert!(BackendUrl::parse("https://h/x?user=a@b").is_ok());
    }

    #[test]
    fn shows_the_url_as_requests_use_it() {
        let u = BackendUrl::parse("https://Cloud.Example.org").unwrap();
        assert_eq!(u.as_str(), "https://cloud.example.org/");
        assert_eq!(u.to_string(), u.as_str());
        assert_eq!(
            format!("{u:?}"),
            "BackendUrl(\"https://cloud.example.org/\")"
        );
    }
}
