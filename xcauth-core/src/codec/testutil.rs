//! Test helpers shared by the framing tests: a tiny PRNG and the robustness driver.

use super::{Decoded, Decoder, Framing};

/// xorshift64*: deterministic, dependency-free, good enough for fuzz-style tests.
#[derive(Debug)]
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub(super) fn byte(&mut self) -> u8 {
        (self.next_u64() >> 32) as u8
    }

    /// A short word, usually ASCII letters, sometimes with a ':', '@', '%' or non-ASCII.
    pub(super) fn word(&mut self) -> String {
        const CHARS: [&str; 10] = ["a", "b", "z", "0", ".", ":", "@", "%41", "ä", " "];
        let n = self.below(8);
        (0..n)
            .map(|_| {
                if self.below(8) == 0 {
                    CHARS[self.below(CHARS.len())]
                } else {
                    CHARS[self.below(3)]
                }
            })
            .collect()
    }

    /// Leaves `buf` alone, truncates it, or changes one byte.
    pub(super) fn damage(&mut self, buf: &mut Vec<u8>) {
        match self.below(4) {
            0 => {
                let n = self.below(buf.len() + 1);
                buf.truncate(n);
            }
            1 if !buf.is_empty() => {
                let i = self.below(buf.len());
                buf[i] = self.byte();
            }
            _ => {}
        }
    }

    /// A buffer of up to `max_len` bytes built from random bytes, the given tokens and
    /// small big-endian u16 lengths.
    pub(super) fn tokens(&mut self, tokens: &[&[u8]], max_len: usize) -> Vec<u8> {
        let target = self.below(max_len + 1);
        let mut out = Vec::with_capacity(target + 8);
        while out.len() < target {
            match self.below(4) {
                0 => {
                    for _ in 0..self.below(8) {
                        let b = self.byte();
                        out.push(b);
                    }
                }
                1 => {
                    let len = self.below(24) as u16;
                    out.extend_from_slice(&len.to_be_bytes());
                }
                _ => {
                    let t = tokens[self.below(tokens.len())];
                    out.extend_from_slice(t);
                }
            }
        }
        out
    }
}

/// Generated input for the line framings: lines from `templates` (with their
/// `{}` replaced by random short words) or random token soup, each ended by `\n` or
/// `\r\n` (or nothing, for the last), then maybe truncated or with one byte changed.
pub(super) fn lines(
    rng: &mut Rng,
    templates: &[&str],
    tokens: &[&[u8]],
    max_len: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < max_len {
        match rng.below(3) {
            0 => out.extend_from_slice(&rng.tokens(tokens, 24)),
            _ => {
                let t = templates[rng.below(templates.len())];
                let word = rng.word();
                out.extend_from_slice(t.replace("{}", &word).as_bytes());
            }
        }
        match rng.below(4) {
            0 => out.extend_from_slice(b"\r\n"),
            1 if out.len() >= max_len => {}
            _ => out.push(b'\n'),
        }
    }
    rng.damage(&mut out);
    out
}

/// Decodes requests from the front of `buf` until `NeedMore`; returns what was decoded
/// and how many bytes are left.
pub(super) fn decode_all(dec: &mut Decoder, buf: &[u8]) -> (Vec<Decoded>, usize) {
    let mut pos = 0;
    let mut out = Vec::new();
    loop {
        let rest = &buf[pos..];
        let d = dec.decode(rest);
        match &d {
            Decoded::NeedMore => return (out, rest.len()),
            Decoded::Request { consumed, .. }
            | Decoded::Reply { consumed, .. }
            | Decoded::Close { consumed, .. } => {
                assert!((1..=rest.len()).contains(consumed), "{d:?}");
                pos += consumed;
            }
        }
        out.push(d);
    }
}

fn consumed(d: &Decoded) -> Option<usize> {
    match d {
        Decoded::NeedMore => None,
        Decoded::Request { consumed, .. }
        | Decoded::Reply { consumed, .. }
        | Decoded::Close { consumed, .. } => Some(*consumed),
    }
}

/// Feeds `iterations` generated buffers through `decode` and `decode_eof`, consuming as
/// instructed, and checks the contract: no panic; `consumed` in `1..=len` (0 only for
/// `decode_eof` on an empty buffer); `NeedMore` only below the bound and never at EOF;
/// a prefix of a buffer decodes to `NeedMore` or to the same result as the whole.
/// Returns how many decisions and how many of them requests the streaming pass made.
pub(super) fn robustness(
    framing: Framing,
    max_line: usize,
    iterations: usize,
    mut gen: impl FnMut(&mut Rng) -> Vec<u8>,
    rng: &mut Rng,
) -> (usize, usize) {
    let mut dec = Decoder::new(framing, max_line);
    let bound = dec.max_request();
    let mut decoded = 0usize;
    let mut requests = 0usize;
    for _ in 0..iterations {
        let buf = gen(rng);

        // Streaming: decode until NeedMore.
        let mut pos = 0;
        loop {
            let rest = &buf[pos..];
            let d = dec.decode(rest);
            match consumed(&d) {
                None => {
                    assert!(
                        rest.len() < bound,
                        "{framing:?}: NeedMore at {}",
                        rest.len()
                    );
                    break;
                }
                Some(c) => {
                    assert!((1..=rest.len()).contains(&c), "{framing:?}: {d:?}");
                    pos += c;
                    decoded += 1;
                    requests += usize::from(matches!(d, Decoded::Request { .. }));
                }
            }
        }

        // End of input: the rest decodes to completion, never NeedMore.
        loop {
            let rest = &buf[pos..];
            let d = dec.decode_eof(rest);
            match consumed(&d) {
                None => panic!("{framing:?}: NeedMore at EOF"),
                Some(0) => {
                    assert!(rest.is_empty(), "{framing:?}: {d:?}");
                    assert!(matches!(d, Decoded::Close { .. }), "{framing:?}: {d:?}");
                    break;
                }
                Some(c) => {
                    assert!(c <= rest.len(), "{framing:?}: {d:?}");
                    pos += c;
                }
            }
        }

        // Prefix stability: more input never changes an earlier decision.
        let whole = dec.decode(&buf);
        let cut = rng.below(buf.len() + 1);
        let part = dec.decode(&buf[..cut]);
        if part != Decoded::NeedMore {
            assert_eq!(part, whole, "{framing:?}: cut at {cut}");
        }
        // Without EOF, a decision on the whole buffer matches decode_eof's.
        if whole != Decoded::NeedMore {
            assert_eq!(dec.decode_eof(&buf), whole, "{framing:?}");
        }
    }
    // The generator must exercise more than NeedMore.
    assert!(
        decoded > iterations / 10,
        "{framing:?}: only {decoded} decisions"
    );
    (decoded, requests)
}

/// The randomized robustness run of a line framing: lines built from
/// `templates` and `tokens` (plus an occasional over-long line) at several
/// `max_line` bounds, 20 000 inputs in all. Returns the requests decoded.
pub(super) fn line_robustness(
    framing: Framing,
    seed: u64,
    maxes: [usize; 5],
    templates: &[&str],
    tokens: &[&[u8]],
) -> usize {
    let mut requests = 0;
    for max in maxes {
        let mut rng = Rng::new(seed ^ max as u64);
        let (_, r) = robustness(
            framing,
            max,
            20_000 / maxes.len(),
            |rng: &mut Rng| {
                if rng.below(500) == 0 {
                    vec![b'a'; max + rng.below(3)]
                } else {
                    lines(rng, templates, tokens, 3 * max.min(64))
                }
            },
            &mut rng,
        );
        requests += r;
    }
    requests
}
