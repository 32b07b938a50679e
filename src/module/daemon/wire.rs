//! The frames an Apache child and a daemon exchange over the daemon's Unix socket: one
//! connection per request, and each frame one call of `abi::Request`, serialised.
//!
//! A frame is a kind byte, a little-endian `u32` payload length, then the payload. Only
//! [`READ`] waits for an answer ([`BODY`]/[`BODY_ERROR`]), and the child writes nothing else,
//! so neither side can block writing while the other does too. [`START`] and [`LOG`] are made
//! with the GIL held, so they wait for no answer: the daemon decides from the [`Hello`] what the
//! child's `start` will return. Pure Rust, no FFI: the unit tests (proptest) round-trip every
//! payload.

use std::io::{self, Read, Write};

// Child to daemon.
/// First frame: [`Hello`].
pub const HELLO: u8 = 1;
/// Answers [`READ`]: at most the bytes asked for; empty at the end of the body.
pub const BODY: u8 = 2;
/// Answers [`READ`]: reading the body failed (client gone, `LimitRequestBody`).
pub const BODY_ERROR: u8 = 3;
// Daemon to child.
/// The hello was accepted; Python will see the request.
pub const READY: u8 = 16;
/// `u32`: the most body bytes the application wants now.
pub const READ: u8 = 17;
/// [`Start`]: status line and headers. No answer: see [`Hello::error_override`].
pub const START: u8 = 18;
/// Response body bytes.
pub const DATA: u8 = 19;
/// Flush what Apache holds of the response.
pub const FLUSH: u8 = 20;
/// `i32` level, then the text: a line for the error log, attributed to the request.
pub const LOG: u8 = 21;
/// `i32`: the engine's `Outcome`, then `u8`: 1 when the daemon keeps the connection for the
/// child's next request (see [`end`]). Last frame.
pub const END: u8 = 22;
/// Empty; instead of [`READY`], and last: the script changed since this process loaded it
/// (`WSGIScriptReloading On`), so the process restarts: connect again and resend the hello
/// (mod_wsgi's "200 Rejected"). Nothing of the body was asked for yet.
pub const RESTART: u8 = 23;

/// Start of a [`Hello`], and the version of this protocol (both ends are the same .so, so
/// this is a sanity check, not negotiation). 2: the hello carries `error_override`, and
/// START has no answer. 3: the daemon may answer [`RESTART`]. 4: connections carry more
/// than one request ([`END`] says whether this one may).
pub const MAGIC: &[u8; 4] = b"MWRS";
pub const VERSION: u16 = 4;
/// The largest frame either side accepts (a hello carries the whole environ).
pub const MAX_FRAME: usize = 16 << 20;
/// The largest [`DATA`] frame a daemon sends.
pub const MAX_DATA: usize = 1 << 20;

/// An [`END`] payload. `keep`: the daemon parks the connection for the child's next request
/// (it has room for it, and is not stopping); otherwise it closes it and the child must not
/// keep it either.
pub fn end(outcome: i32, keep: bool) -> [u8; 5] {
    let mut payload = [0u8; 5];
    payload[..4].copy_from_slice(&outcome.to_le_bytes());
    payload[4] = keep as u8;
    payload
}

/// Writes one frame (header and payload, without flushing).
pub fn write_frame(out: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut header = [0u8; 5];
    header[0] = kind;
    header[1..].copy_from_slice(&len.to_le_bytes());
    out.write_all(&header)?;
    out.write_all(payload)
}

/// A frame over its limit: the `InvalidData` error of [`read_frame`], which says by how
/// much (the child names `header-buffer-size` for a [`START`] frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oversized {
    pub kind: u8,
    pub len: usize,
    pub max: usize,
}

impl std::fmt::Display for Oversized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "frame of {} bytes is over the limit of {}", self.len, self.max)
    }
}

impl std::error::Error for Oversized {}

impl Oversized {
    /// The [`Oversized`] inside `error`, if that is what it is.
    pub fn of(error: &io::Error) -> Option<Oversized> {
        error.get_ref().and_then(|e| e.downcast_ref::<Oversized>()).copied()
    }
}

/// Reads one frame; a payload over `max` bytes is an error (`InvalidData`).
pub fn read_frame(input: &mut impl Read, max: usize) -> io::Result<(u8, Vec<u8>)> {
    read_frame_within(input, |_| max)
}

/// As [`read_frame`], the limit depending on the frame's kind (a [`START`] frame's is the
/// group's `header-buffer-size`, which the daemon applies before sending it).
pub fn read_frame_within(input: &mut impl Read, max: impl Fn(u8) -> usize) -> io::Result<(u8, Vec<u8>)> {
    let mut header = [0u8; 5];
    input.read_exact(&mut header)?;
    let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let max = max(header[0]);
    if len > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, Oversized { kind: header[0], len, max }));
    }
    let mut payload = vec![0u8; len];
    input.read_exact(&mut payload)?;
    Ok((header[0], payload))
}

/// Builds a payload.
#[derive(Default)]
pub struct Encoder(pub Vec<u8>);

impl Encoder {
    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    pub fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn i32(mut self, v: i32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn raw(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }
    /// A `u32` length, then the bytes.
    pub fn bytes(self, v: &[u8]) -> Self {
        self.u32(v.len() as u32).raw(v)
    }
    /// A `u32` count, then each name and value as [`Encoder::bytes`].
    pub fn pairs<'a>(self, pairs: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>) -> Self {
        let mut out = self.u32(pairs.len() as u32);
        for (name, value) in pairs {
            out = out.bytes(name).bytes(value);
        }
        out
    }
}

/// Reads a payload; every read past the end is an `InvalidData` error.
pub struct Decoder<'a>(pub &'a [u8]);

fn truncated() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "truncated frame")
}

impl<'a> Decoder<'a> {
    pub fn raw(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(truncated());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub fn u8(&mut self) -> io::Result<u8> {
        Ok(self.raw(1)?[0])
    }
    pub fn u16(&mut self) -> io::Result<u16> {
        Ok(u16::from_le_bytes(self.raw(2)?.try_into().map_err(|_| truncated())?))
    }
    pub fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(self.raw(4)?.try_into().map_err(|_| truncated())?))
    }
    pub fn i32(&mut self) -> io::Result<i32> {
        Ok(i32::from_le_bytes(self.raw(4)?.try_into().map_err(|_| truncated())?))
    }
    pub fn bytes(&mut self) -> io::Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.raw(n)
    }
    pub fn pairs(&mut self) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let n = self.u32()? as usize;
        // Each pair takes at least 8 bytes: a count larger than that is a lie, not a reason
        // to reserve gigabytes.
        let mut pairs = Vec::with_capacity(n.min(self.0.len() / 8));
        for _ in 0..n {
            pairs.push((self.bytes()?.to_vec(), self.bytes()?.to_vec()));
        }
        Ok(pairs)
    }
}

/// The first frame of a request: who sends it (the group's secret token), what to run, and
/// how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub token: [u8; 16],
    /// `WSGIErrorOverride On` for this request: the daemon's `start` returns 1 for an error
    /// status, as the child's will when the [`START`] frame reaches it.
    pub error_override: bool,
    pub script: Vec<u8>,
    pub callable: Vec<u8>,
    pub group: Vec<u8>,
    pub environ: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Hello {
    /// The payload, field by field: the tests' reference for [`hello_frame`].
    #[cfg(test)]
    pub fn encode(&self) -> Vec<u8> {
        Encoder::default()
            .raw(MAGIC)
            .u16(VERSION)
            .raw(&self.token)
            .u8(self.error_override as u8)
            .bytes(&self.script)
            .bytes(&self.callable)
            .bytes(&self.group)
            .pairs(self.environ.iter().map(|(k, v)| (&k[..], &v[..])))
            .0
    }

    pub fn decode(payload: &[u8]) -> io::Result<Hello> {
        let mut d = Decoder(payload);
        if d.raw(4)? != MAGIC || d.u16()? != VERSION {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not a mod_wsgi-rs request of this version"));
        }
        let token = d.raw(16)?.try_into().map_err(|_| truncated())?;
        let error_override = match d.u8()? {
            0 => false,
            1 => true,
            other => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("error_override {other} is not 0 or 1"))),
        };
        Ok(Hello {
            token,
            error_override,
            script: d.bytes()?.to_vec(),
            callable: d.bytes()?.to_vec(),
            group: d.bytes()?.to_vec(),
            environ: d.pairs()?,
        })
    }
}

/// The framed [`HELLO`] of these fields, built in one buffer without copying the environ
/// first (the child's per-request path); [`Hello::decode`] reads its payload.
pub fn hello_frame<'a>(
    token: &[u8; 16],
    error_override: bool,
    script: &[u8],
    callable: &[u8],
    group: &[u8],
    environ: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> io::Result<Vec<u8>> {
    let mut out = Encoder(Vec::with_capacity(4096)).u8(HELLO).u32(0).raw(MAGIC).u16(VERSION).raw(token).u8(error_override as u8);
    out = out.bytes(script).bytes(callable).bytes(group);
    let count_at = out.0.len();
    out = out.u32(0);
    let mut count = 0u32;
    for (name, value) in environ {
        out = out.bytes(name).bytes(value);
        count += 1;
    }
    let mut frame = out.0;
    frame[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
    let len = u32::try_from(frame.len() - 5).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    frame[1..5].copy_from_slice(&len.to_le_bytes());
    Ok(frame)
}

/// A [`START`] frame: `start_response`'s status line and headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start {
    pub status: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Start {
    pub fn encode<'a>(status: &[u8], headers: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
        Encoder::default().bytes(status).pairs(headers).0
    }

    pub fn decode(payload: &[u8]) -> io::Result<Start> {
        let mut d = Decoder(payload);
        Ok(Start { status: d.bytes()?.to_vec(), headers: d.pairs()? })
    }
}

/// Compares secrets in time independent of where they differ.
/// The fixed start of a [`Hello`]'s payload: magic, version, token.
pub const HELLO_PREFIX: usize = MAGIC.len() + 2 + 16;

/// Whether a hello payload's first [`HELLO_PREFIX`] bytes are this protocol's, with `token`
/// (checked before the rest is read: a connection without it costs no more).
pub fn hello_prefix_matches(prefix: &[u8], token: &[u8; 16]) -> bool {
    let mut d = Decoder(prefix);
    let (Ok(magic), Ok(version), Ok(sent)) = (d.raw(MAGIC.len()), d.u16(), d.raw(16)) else { return false };
    let Ok(sent) = <&[u8; 16]>::try_from(sent) else { return false };
    magic == MAGIC && version == VERSION && same_token(sent, token)
}

pub fn same_token(a: &[u8; 16], b: &[u8; 16]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
        proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..40), proptest::collection::vec(any::<u8>(), 0..200)), 0..20)
    }

    proptest! {
        #[test]
        fn hello_round_trips(token in any::<[u8; 16]>(), error_override in any::<bool>(), script in proptest::collection::vec(any::<u8>(), 0..100),
                             callable in proptest::collection::vec(any::<u8>(), 0..20), group in proptest::collection::vec(any::<u8>(), 0..20),
                             environ in pairs()) {
            let hello = Hello { token, error_override, script, callable, group, environ };
            let mut framed = Vec::new();
            write_frame(&mut framed, HELLO, &hello.encode()).unwrap();
            let (kind, payload) = read_frame(&mut &framed[..], MAX_FRAME).unwrap();
            prop_assert_eq!(kind, HELLO);
            prop_assert_eq!(Hello::decode(&payload).unwrap(), hello.clone());
            let built = hello_frame(&hello.token, hello.error_override, &hello.script, &hello.callable, &hello.group,
                                    hello.environ.iter().map(|(k, v)| (&k[..], &v[..]))).unwrap();
            prop_assert_eq!(built, framed, "one-buffer hello and Hello::encode agree");
        }

        #[test]
        fn start_round_trips(status in proptest::collection::vec(any::<u8>(), 0..50), headers in pairs()) {
            let payload = Start::encode(&status, headers.iter().map(|(k, v)| (&k[..], &v[..])));
            prop_assert_eq!(Start::decode(&payload).unwrap(), Start { status, headers });
        }

        #[test]
        fn cut_hellos_are_errors_not_panics(error_override in any::<bool>(), environ in pairs(), cut in 0usize..2000) {
            let payload = Hello { token: [7; 16], error_override, script: b"/a.wsgi".to_vec(), callable: b"application".to_vec(), group: Vec::new(), environ }.encode();
            if cut < payload.len() {
                prop_assert!(Hello::decode(&payload[..cut]).is_err());
            }
        }

        #[test]
        fn cut_payloads_are_errors_not_panics(headers in pairs(), cut in 0usize..1000) {
            let payload = Start::encode(b"200 OK", headers.iter().map(|(k, v)| (&k[..], &v[..])));
            if cut < payload.len() {
                prop_assert!(Start::decode(&payload[..cut]).is_err());
            }
        }
    }

    #[test]
    fn limits_and_tokens() {
        let mut framed = Vec::new();
        write_frame(&mut framed, DATA, &[7u8; 100]).unwrap();
        let error = read_frame(&mut &framed[..], 99).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert_eq!(Oversized::of(&error), Some(Oversized { kind: DATA, len: 100, max: 99 }));
        let limit = |kind| if kind == START { 50 } else { MAX_FRAME };
        assert!(read_frame_within(&mut &framed[..], limit).is_ok(), "a DATA frame has the general limit");
        let mut start = Vec::new();
        write_frame(&mut start, START, &[0u8; 51]).unwrap();
        assert_eq!(Oversized::of(&read_frame_within(&mut &start[..], limit).unwrap_err()).map(|o| o.len), Some(51));
        assert_eq!(read_frame(&mut &framed[..3], 1000).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert!(Hello::decode(b"XXXX").is_err());
        // Another version, or a flag byte that is not a boolean, is refused.
        let hello = Hello { token: [1; 16], error_override: true, script: Vec::new(), callable: Vec::new(), group: Vec::new(), environ: Vec::new() };
        let mut payload = hello.encode();
        assert_eq!(Hello::decode(&payload).unwrap(), hello);
        payload[4..6].copy_from_slice(&2u16.to_le_bytes());
        assert!(Hello::decode(&payload).is_err(), "a version 2 hello");
        let mut payload = hello.encode();
        payload[6 + 16] = 2;
        assert!(Hello::decode(&payload).is_err(), "error_override 2");
        assert!(same_token(&[1; 16], &[1; 16]));
        assert!(!same_token(&[1; 16], &[2; 16]));
    }
}
