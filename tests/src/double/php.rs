//! PHP semantics the double has to mimic: `json_encode(…, JSON_HEX_TAG)`, `empty()` and the
//! decoding of `application/x-www-form-urlencoded` bodies and query strings.

use std::collections::HashMap;
use std::fmt::Write as _;

/// A JSON value as PHP sees it. `Obj` is a PHP (ordered) array with string keys: it is emitted as
/// a JSON list when it is empty or when its keys are exactly `"0"`, `"1"`, … in order, like PHP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// A PHP list.
    Arr(Vec<Json>),
    /// A PHP array with string keys, in insertion order.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// Shorthand for a string value.
    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// Shorthand for an object built from `(key, value)` pairs.
    pub fn obj<const N: usize>(pairs: [(&str, Json); N]) -> Json {
        Json::Obj(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// Encodes like PHP's `json_encode($value, JSON_HEX_TAG)`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(true) => out.push_str("true"),
            Json::Bool(false) => out.push_str("false"),
            Json::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Json::Str(s) => encode_str(s, out),
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.encode_into(out);
                }
                out.push(']');
            }
            Json::Obj(pairs) => {
                let is_list = pairs
                    .iter()
                    .enumerate()
                    .all(|(i, (k, _))| *k == i.to_string());
                if is_list {
                    out.push('[');
                    for (i, (_, v)) in pairs.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        v.encode_into(out);
                    }
                    out.push(']');
                } else {
                    out.push('{');
                    for (i, (k, v)) in pairs.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        encode_str(k, out);
                        out.push(':');
                        v.encode_into(out);
                    }
                    out.push('}');
                }
            }
        }
    }
}

/// PHP string escaping: `\/`, `\uXXXX` (lower-case hex, UTF-16 surrogate pairs) for everything
/// outside ASCII, `\u003C` / `\u003E` for `<` / `>` (`JSON_HEX_TAG`).
fn encode_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            c if (c as u32) < 0x20 || (c as u32) >= 0x80 => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// PHP `empty()` for a request parameter: missing, `""` and `"0"` are empty.
pub fn empty(value: Option<&[u8]>) -> bool {
    match value {
        None => true,
        Some(v) => v.is_empty() || v == b"0",
    }
}

/// Decodes one `application/x-www-form-urlencoded` component like PHP's `urldecode`: `+` is a
/// space, `%XX` (either case) a byte, an invalid `%` sequence stays as it is.
pub fn url_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => i = decode_percent(input, i, &mut out),
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn decode_percent(input: &[u8], i: usize, out: &mut Vec<u8>) -> usize {
    let hi = input.get(i + 1).and_then(|b| (*b as char).to_digit(16));
    let lo = input.get(i + 2).and_then(|b| (*b as char).to_digit(16));
    match (hi, lo) {
        (Some(h), Some(l)) => {
            // h and l are < 16, so the byte fits.
            out.push(u8::try_from(h * 16 + l).unwrap_or(0));
            i + 3
        }
        _ => {
            out.push(b'%');
            i + 1
        }
    }
}

/// Parses a query string or form body like PHP's `parse_str` (without the `[]` array syntax):
/// pairs separated by `&`, empty names dropped, a pair without `=` has the value `""`, `.` and
/// space in names become `_`, later duplicates win.
pub fn parse_form(input: &[u8], into: &mut HashMap<Vec<u8>, Vec<u8>>) {
    for pair in input.split(|b| *b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &b""[..]),
        };
        let mut name = url_decode(name);
        if name.is_empty() {
            continue;
        }
        for b in &mut name {
            if *b == b'.' || *b == b' ' {
                *b = b'_';
            }
        }
        into.insert(name, url_decode(value));
    }
}

/// Turns the members of a JSON object body into request parameters, converting scalars to the
/// string PHP would see when the value is used as a string.
pub fn parse_json_params(body: &[u8], into: &mut HashMap<Vec<u8>, Vec<u8>>) {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return;
    };
    for (k, v) in map {
        let s = match v {
            serde_json::Value::Null | serde_json::Value::Bool(false) => String::new(),
            serde_json::Value::Bool(true) => "1".to_owned(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s,
            serde_json::Value::Array(a) if a.is_empty() => String::new(),
            serde_json::Value::Object(o) if o.is_empty() => String::new(),
            serde_json::Value::Array(_) | serde_json::Value::Object(_) => "Array".to_owned(),
        };
        into.insert(k.into_bytes(), s.into_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_escaping() {
        let j = Json::obj([("n", Json::str("a/b<c>ä😀\"\\\n\u{1}"))]);
        assert_eq!(
            j.encode(),
            r#"{"n":"a\/b\u003Cc\u003E\u00e4\ud83d\ude00\"\\\n\u0001"}"#
        );
    }

    #[test]
    fn php_arrays() {
        assert_eq!(Json::Obj(vec![]).encode(), "[]");
        let list = Json::Obj(vec![("0".into(), Json::Int(5)), ("1".into(), Json::Null)]);
        assert_eq!(list.encode(), "[5,null]");
        let not_list = Json::Obj(vec![("1".into(), Json::Int(5)), ("0".into(), Json::Null)]);
        assert_eq!(not_list.encode(), r#"{"1":5,"0":null}"#);
        assert_eq!(Json::Arr(vec![Json::Bool(true)]).encode(), "[true]");
    }

    #[test]
    fn form_decoding() {
        let mut m = HashMap::new();
        parse_form(b"a=1&b=x+y%3a%2B&&=z&c&a=2&d.e=%zz%4", &mut m);
        assert_eq!(m[&b"a"[..]], b"2");
        assert_eq!(m[&b"b"[..]], b"x y:+");
        assert_eq!(m[&b"c"[..]], b"");
        assert_eq!(m[&b"d_e"[..]], b"%zz%4");
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn php_empty() {
        assert!(empty(None));
        assert!(empty(Some(b"")));
        assert!(empty(Some(b"0")));
        assert!(!empty(Some(b"00")));
        assert!(!empty(Some(b" ")));
    }
}
