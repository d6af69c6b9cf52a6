//! A small HTTP/1.1 server side: request parsing (request line, case-insensitive headers,
//! `Content-Length` or chunked bodies, `Expect: 100-continue`, pipelining) and response writing.

use std::io::{self, Read, Write};

/// What a connection reads requests from and writes responses to: a TCP stream, or a TLS
/// stream over one.
pub trait Stream: Read + Write + Send {}

impl<T: Read + Write + Send> Stream for T {}

/// Largest request head (request line and headers) accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// A parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    /// All values of header `name` (case-insensitive), joined with `", "` like Apache does.
    pub fn header(&self, name: &str) -> Option<Vec<u8>> {
        let mut found: Option<Vec<u8>> = None;
        for (n, v) in &self.headers {
            if n.eq_ignore_ascii_case(name) {
                match &mut found {
                    None => found = Some(v.clone()),
                    Some(acc) => {
                        acc.extend_from_slice(b", ");
                        acc.extend_from_slice(v);
                    }
                }
            }
        }
        found
    }

    /// The header as (lossy) text, `""` when absent.
    pub fn header_str(&self, name: &str) -> String {
        self.header(name)
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default()
    }

    /// The path part of the target.
    pub fn path(&self) -> &str {
        match self.target.find('?') {
            Some(q) => &self.target[..q],
            None => &self.target,
        }
    }

    /// The query string (without `?`), `""` when there is none.
    pub fn query(&self) -> &str {
        match self.target.find('?') {
            Some(q) => &self.target[q + 1..],
            None => "",
        }
    }

    /// Whether the connection has to be closed after the response.
    pub fn wants_close(&self) -> bool {
        let conn = self.header_str("connection").to_ascii_lowercase();
        let has = |t: &str| conn.split(',').any(|p| p.trim() == t);
        if self.version == "HTTP/1.0" {
            !has("keep-alive")
        } else {
            has("close")
        }
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed (or timed out) before a complete request; close silently.
    Closed,
    /// A malformed or oversized request: answer with this status and close.
    Bad(u16),
}

/// A server-side connection with its read buffer (bytes of pipelined requests are kept).
pub struct Conn {
    pub stream: Box<dyn Stream>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl Conn {
    pub fn new(stream: Box<dyn Stream>) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    fn fill(&mut self) -> Result<(), ReadError> {
        let mut chunk = [0u8; 8192];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ReadError::Closed),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(ReadError::Closed),
            }
        }
    }

    /// True when bytes of a next (pipelined) request are already buffered.
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Reads the next request.
    pub fn read_request(&mut self) -> Result<Request, ReadError> {
        // Leading empty lines before a request line are ignored (RFC 9112, 2.2).
        let (head_end, body_start) = loop {
            while self.buf.first().is_some_and(|b| *b == b'\r' || *b == b'\n') {
                self.buf.remove(0);
            }
            if let Some(found) = find_head_end(&self.buf) {
                break found;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(ReadError::Bad(431));
            }
            self.fill()?;
        };
        if head_end > MAX_HEAD {
            return Err(ReadError::Bad(431));
        }
        let head: Vec<u8> = self.buf[..head_end].to_vec();
        self.buf.drain(..body_start);
        let mut lines = head
            .split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let request_line = lines.next().ok_or(ReadError::Bad(400))?;
        let request_line = std::str::from_utf8(request_line).map_err(|_| ReadError::Bad(400))?;
        let parts: Vec<&str> = request_line.split(' ').collect();
        let [method, target, version] = parts[..] else {
            return Err(ReadError::Bad(400));
        };
        if method.is_empty() || target.is_empty() {
            return Err(ReadError::Bad(400));
        }
        if version != "HTTP/1.1" && version != "HTTP/1.0" {
            return Err(ReadError::Bad(505));
        }
        let mut headers = Vec::new();
        for line in lines {
            if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
                return Err(ReadError::Bad(400)); // obsolete line folding
            }
            let colon = line
                .iter()
                .position(|b| *b == b':')
                .ok_or(ReadError::Bad(400))?;
            let name = std::str::from_utf8(&line[..colon]).map_err(|_| ReadError::Bad(400))?;
            if name.is_empty() || name.contains(|c: char| c.is_whitespace()) {
                return Err(ReadError::Bad(400));
            }
            headers.push((name.to_owned(), trim_ows(&line[colon + 1..]).to_vec()));
        }
        let mut req = Request {
            method: method.to_owned(),
            target: target.to_owned(),
            version: version.to_owned(),
            headers,
            body: Vec::new(),
        };
        let chunked = req
            .header_str("transfer-encoding")
            .to_ascii_lowercase()
            .contains("chunked");
        let length = match req.header("content-length") {
            None => None,
            Some(v) => {
                let text = std::str::from_utf8(&v).map_err(|_| ReadError::Bad(400))?;
                // Repeated identical values ("5, 5") are allowed; differing ones are not.
                let mut values = text.split(',').map(|p| p.trim().parse::<usize>());
                let first = values
                    .next()
                    .and_then(Result::ok)
                    .ok_or(ReadError::Bad(400))?;
                if values.any(|v| v.ok() != Some(first)) {
                    return Err(ReadError::Bad(400));
                }
                Some(first)
            }
        };
        if length.is_some_and(|l| l > MAX_BODY) {
            return Err(ReadError::Bad(413));
        }
        let expects_continue = req
            .header_str("expect")
            .eq_ignore_ascii_case("100-continue");
        if expects_continue && (chunked || length.is_some_and(|l| l > 0)) && self.buf.is_empty() {
            let _ = self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        if chunked {
            req.body = self.read_chunked()?;
        } else if let Some(len) = length {
            while self.buf.len() < len {
                self.fill()?;
            }
            req.body = self.buf.drain(..len).collect();
        }
        Ok(req)
    }

    fn read_line(&mut self) -> Result<Vec<u8>, ReadError> {
        loop {
            if let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=nl).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(ReadError::Bad(400));
            }
            self.fill()?;
        }
    }

    fn read_chunked(&mut self) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line()?;
            let size_text = line.split(|b| *b == b';').next().unwrap_or(&[]);
            let size_text =
                std::str::from_utf8(trim_ows(size_text)).map_err(|_| ReadError::Bad(400))?;
            let size = usize::from_str_radix(size_text, 16).map_err(|_| ReadError::Bad(400))?;
            if size == 0 {
                // Trailer section up to the empty line.
                while !self.read_line()?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(ReadError::Bad(413));
            }
            while self.buf.len() < size + 2 {
                self.fill()?;
            }
            body.extend(self.buf.drain(..size));
            if self.read_line()?.is_empty() {
                continue;
            }
            return Err(ReadError::Bad(400));
        }
    }
}

/// Position of the end of the head and start of the body, accepting CRLF or bare LF.
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    for (i, b) in buf.iter().enumerate() {
        if *b != b'\n' {
            continue;
        }
        match buf.get(i + 1) {
            Some(b'\n') => return Some((i, i + 2)),
            Some(b'\r') if buf.get(i + 2) == Some(&b'\n') => return Some((i, i + 3)),
            _ => {}
        }
    }
    None
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// A response to write.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body: body.into(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Status line and headers, including `Content-Length` and `Connection`.
    pub fn head_bytes(&self, close: bool) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (n, v) in &self.headers {
            out.push_str(n);
            out.push_str(": ");
            out.push_str(v);
            out.push_str("\r\n");
        }
        out.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        out.push_str(if close {
            "Connection: close\r\n"
        } else {
            "Connection: keep-alive\r\n"
        });
        out.push_str("\r\n");
        out.into_bytes()
    }

    /// Writes the response (without body for `HEAD`).
    pub fn write_to(&self, stream: &mut dyn Write, close: bool, head_only: bool) -> io::Result<()> {
        let mut bytes = self.head_bytes(close);
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        stream.write_all(&bytes)?;
        stream.flush()
    }
}

/// The reason phrase for the status codes the double uses.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}
