//! A tiny HTTP/1.1 client for the Nextcloud tests: one request per connection
//! (`Connection: close`, as PHP's built-in server closes anyway), any `Host` header, any
//! loopback source address, chunked replies decoded, the elapsed time recorded.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

/// How long one HTTP request may take (a password check costs about a second on a busy host).
const REQUEST_LIMIT: Duration = Duration::from_secs(120);

/// A raw HTTP/1.1 request to the server (sent with `Connection: close`).
#[derive(Debug, Clone)]
pub struct Request {
    method: &'static str,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    host: Option<String>,
    source: Option<Ipv4Addr>,
}

impl Request {
    /// `GET TARGET`.
    pub fn get(target: &str) -> Request {
        Request {
            method: "GET",
            target: target.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            host: None,
            source: None,
        }
    }

    /// `GET /ocs/v2.php/PATH` asking for JSON, with `OCS-APIRequest: true`.
    pub fn ocs(path: &str) -> Request {
        let sep = if path.contains('?') { '&' } else { '?' };
        Request::get(&format!("/ocs/v2.php/{path}{sep}format=json"))
            .header("OCS-APIRequest", "true")
    }

    /// `POST /ocs/v2.php/PATH` with a form body, asking for JSON, with `OCS-APIRequest: true`.
    pub fn ocs_post(path: &str, form: &str) -> Request {
        let mut req =
            Request::ocs(path).header("Content-Type", "application/x-www-form-urlencoded");
        req.method = "POST";
        req.body = form.as_bytes().to_vec();
        req
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Drops every header called `name`.
    pub fn without_header(mut self, name: &str) -> Request {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// `Authorization: Basic base64(login:password)` (UTF-8).
    pub fn basic(self, login: &str, password: &str) -> Request {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"));
        self.header("Authorization", &format!("Basic {token}"))
    }

    /// Another `Host` header than the server's address.
    pub fn host(mut self, host: &str) -> Request {
        self.host = Some(host.to_owned());
        self
    }

    /// Connects from this loopback address (`127.0.0.2`, …) instead of 127.0.0.1: Nextcloud
    /// counts failed logins per client address.
    pub fn from(mut self, source: Ipv4Addr) -> Request {
        self.source = Some(source);
        self
    }
}

/// A reply as received, with the time from connecting to the end of the body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers in order (names as sent).
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
    /// How long the request took.
    pub elapsed: Duration,
}

impl Reply {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text()))
    }

    /// `ocs.meta.statuscode` of an OCS reply.
    pub fn ocs_statuscode(&self) -> i64 {
        let json = self.json();
        json["ocs"]["meta"]["statuscode"]
            .as_i64()
            .unwrap_or_else(|| panic!("no ocs.meta.statuscode: {json}"))
    }

    /// `ocs.meta.message` of an OCS reply.
    pub fn ocs_message(&self) -> String {
        self.json()["ocs"]["meta"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// `ocs.data` of an OCS reply.
    pub fn ocs_data(&self) -> Value {
        self.json()["ocs"]["data"].clone()
    }
}

/// Sends `req` to `addr`; panics when the server cannot be reached.
pub fn send(addr: SocketAddr, req: &Request) -> Reply {
    try_send(addr, req).unwrap_or_else(|e| panic!("{} {} to {addr}: {e}", req.method, req.target))
}

/// Sends `req` to `addr` on a new connection and reads the reply to the end.
///
/// # Errors
/// Connecting, writing or reading failed, or the reply is not HTTP.
pub fn try_send(addr: SocketAddr, req: &Request) -> io::Result<Reply> {
    let started = Instant::now();
    let mut stream = connect(addr, req.source)?;
    stream.set_read_timeout(Some(REQUEST_LIMIT))?;
    stream.set_write_timeout(Some(REQUEST_LIMIT))?;
    let host = req.host.clone().unwrap_or_else(|| addr.to_string());
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n",
        req.method, req.target
    );
    for (name, value) in &req.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !req.body.is_empty() || req.method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", req.body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&req.body);
    stream.write_all(&bytes)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let mut reply = parse_reply(&raw)?;
    reply.elapsed = started.elapsed();
    Ok(reply)
}

fn connect(addr: SocketAddr, source: Option<Ipv4Addr>) -> io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    if let Some(ip) = source {
        socket.bind(&SocketAddrV4::new(ip, 0).into())?;
    }
    socket.connect_timeout(&addr.into(), Duration::from_secs(10))?;
    Ok(socket.into())
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn parse_reply(raw: &[u8]) -> io::Result<Reply> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(Reply {
        status,
        headers,
        body,
        elapsed: Duration::ZERO,
    })
}

fn dechunk(mut rest: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("bad chunk"))?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| invalid("bad chunk size"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            return Err(invalid("short chunk"));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}
