//! A tiny HTTP/1.1 client for tests of (and with) the double: keep-alive, `Content-Length`
//! bodies only. Plus the form encoding xcauth uses (Python's `urlencode` / `quote_plus`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::{sign, API_PATH};

/// Encodes one value like Python's `quote_plus`: `A–Z a–z 0–9 _ . - ~` unchanged, space `+`,
/// every other byte `%XX` (upper-case hex).
pub fn quote_plus(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `k1=v1&k2=v2…` with [`quote_plus`] on names and values, in the given order.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", quote_plus(k), quote_plus(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A response as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// First value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One keep-alive connection.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    host: String,
    buf: Vec<u8>,
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed before a full response",
    )
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

impl Client {
    /// Connects (10 s read timeout).
    ///
    /// # Errors
    /// Connection failures.
    pub fn connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            host: addr.to_string(),
            buf: Vec::new(),
        })
    }

    /// Changes the read timeout.
    ///
    /// # Errors
    /// From the socket.
    pub fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.stream.set_read_timeout(Some(timeout))
    }

    /// Sends raw bytes (for malformed requests).
    ///
    /// # Errors
    /// From the socket.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends a request (`Host` and `Content-Length` are added) and reads the response.
    ///
    /// # Errors
    /// Socket errors; `UnexpectedEof` when the server closes without a full response.
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<HttpResponse> {
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes)?;
        self.read_response(method == "HEAD")
    }

    /// POSTs `body` to the API path as a form, signed with `secret` (`sha1=`), with
    /// `Accept: */*` like python-requests.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub fn post_signed(&mut self, secret: &str, body: &str) -> io::Result<HttpResponse> {
        let signature = sign(secret, body.as_bytes());
        self.request(
            "POST",
            API_PATH,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-JSXC-SIGNATURE", &signature),
                ("Accept", "*/*"),
            ],
            body.as_bytes(),
        )
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads one response (skipping `100 Continue`).
    ///
    /// # Errors
    /// As [`Client::request`].
    pub fn read_response(&mut self, head_only: bool) -> io::Result<HttpResponse> {
        loop {
            let end = loop {
                if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break p;
                }
                if self.fill()? == 0 {
                    return Err(eof());
                }
            };
            let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
            self.buf.drain(..end + 4);
            let mut lines = head.split("\r\n");
            let status_line = lines.next().unwrap_or_default();
            let status: u16 = status_line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("bad status line"))?;
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                .collect();
            if status == 100 {
                continue;
            }
            let mut resp = HttpResponse {
                status,
                headers,
                body: Vec::new(),
            };
            if head_only {
                return Ok(resp);
            }
            match resp.header("content-length") {
                Some(len) => {
                    let len: usize = len.parse().map_err(|_| bad("bad Content-Length"))?;
                    while self.buf.len() < len {
                        if self.fill()? == 0 {
                            return Err(eof());
                        }
                    }
                    resp.body = self.buf.drain(..len).collect();
                }
                None => {
                    while self.fill()? > 0 {}
                    resp.body = std::mem::take(&mut self.buf);
                }
            }
            return Ok(resp);
        }
    }

    /// Whether the server has closed the connection (a read returns EOF within `wait`).
    pub fn is_closed(&mut self, wait: Duration) -> bool {
        if self.stream.set_read_timeout(Some(wait)).is_err() {
            return true;
        }
        let mut byte = [0u8; 1];
        let closed = match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => {
                self.buf.push(byte[0]);
                false
            }
            Err(e) => !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        };
        let _ = self.stream.set_read_timeout(Some(Duration::from_secs(10)));
        closed
    }
}

/// One signed form POST on a fresh connection.
///
/// # Errors
/// As [`Client::request`].
pub fn post_once(addr: SocketAddr, secret: &str, body: &str) -> io::Result<HttpResponse> {
    Client::connect(addr)?.post_signed(secret, body)
}
