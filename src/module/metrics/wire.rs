//! The datagrams of mod_wsgi 6.1's telemetry, which the `mod-wsgi-telemetry` ingester from
//! PyPI reads (its `wire.decode` is the specification): a 24-byte little-endian header
//! (`WSGI`, version 1, kind, flags 0, pid, sequence number, epoch seconds as f64) and then
//! records of field id (u16), type tag (u8) and value, to the end of the datagram.

/// The kinds of datagram we send (mod_wsgi's numbering; 8 and 9, garbage-collector reports,
/// are not sent: they would need the GIL, and the ingester 1.1 cannot show them for more than
/// one interpreter).
pub mod kind {
    pub const REQUEST: u8 = 2;
    pub const SLOW_REQUEST: u8 = 4;
    pub const PROCESS_STARTED: u8 = 5;
    pub const PROCESS_STOPPING: u8 = 6;
    pub const PROCESS_STOPPED: u8 = 7;
}

const U64: u8 = 0x01;
const F64: u8 = 0x02;
const BYTES: u8 = 0x04;
const I32_ARRAY: u8 = 0x05;
const F64_ARRAY: u8 = 0x06;

/// mod_wsgi's largest datagram: fields that would pass it are left out.
pub const MAX_DATAGRAM: usize = 8192;

/// One datagram being written.
pub struct Datagram {
    buf: Vec<u8>,
}

impl Datagram {
    pub fn new(kind: u8, pid: u32, seq: u32, stamp: f64) -> Datagram {
        let mut buf = Vec::with_capacity(2048);
        buf.extend_from_slice(b"WSGI");
        buf.push(1);
        buf.push(kind);
        buf.extend_from_slice(&0u16.to_le_bytes());
        buf.extend_from_slice(&pid.to_le_bytes());
        buf.extend_from_slice(&seq.to_le_bytes());
        buf.extend_from_slice(&stamp.to_le_bytes());
        Datagram { buf }
    }

    /// Appends one record, unless the datagram would pass [`MAX_DATAGRAM`].
    fn record(&mut self, id: u16, tag: u8, value: &[u8]) -> &mut Self {
        if self.buf.len() + 3 + value.len() <= MAX_DATAGRAM {
            self.buf.extend_from_slice(&id.to_le_bytes());
            self.buf.push(tag);
            self.buf.extend_from_slice(value);
        }
        self
    }

    pub fn u64(&mut self, id: u16, value: u64) -> &mut Self {
        self.record(id, U64, &value.to_le_bytes())
    }

    pub fn f64(&mut self, id: u16, value: f64) -> &mut Self {
        self.record(id, F64, &value.to_le_bytes())
    }

    /// A string, cut to `max` bytes (ending in `...` when cut, as mod_wsgi cuts them), and
    /// left out when empty, as mod_wsgi leaves it out.
    pub fn text(&mut self, id: u16, value: &[u8], max: usize) -> &mut Self {
        if value.is_empty() {
            return self;
        }
        let mut cut;
        let value = if value.len() > max {
            cut = value[..max.saturating_sub(3)].to_vec();
            cut.extend_from_slice(b"...");
            &cut[..]
        } else {
            value
        };
        let mut data = (value.len() as u16).to_le_bytes().to_vec();
        data.extend_from_slice(value);
        self.record(id, BYTES, &data)
    }

    pub fn i32s(&mut self, id: u16, values: &[i32]) -> &mut Self {
        let mut data = (values.len() as u16).to_le_bytes().to_vec();
        values.iter().for_each(|v| data.extend_from_slice(&v.to_le_bytes()));
        self.record(id, I32_ARRAY, &data)
    }

    pub fn f64s(&mut self, id: u16, values: &[f64]) -> &mut Self {
        let mut data = (values.len() as u16).to_le_bytes().to_vec();
        values.iter().for_each(|v| data.extend_from_slice(&v.to_le_bytes()));
        self.record(id, F64_ARRAY, &data)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header and a record, byte for byte as the research sample of mod_wsgi 6.1.1's
    /// STARTED datagram (pid 424242, seq 1, stamp 1760000000.0).
    #[test]
    fn layout() {
        let mut d = Datagram::new(kind::PROCESS_STARTED, 424242, 1, 1760000000.0);
        d.text(1, b"6.1.1", 63).u64(7, 4242).f64(13, 0.005).text(4, b"", 15);
        let expected: Vec<u8> = [
            &b"WSGI"[..],
            &[1, 5, 0, 0],
            &424242u32.to_le_bytes(),
            &1u32.to_le_bytes(),
            &1760000000.0f64.to_le_bytes(),
            &[1, 0, 4, 5, 0],
            b"6.1.1",
            &[7, 0, 1],
            &4242u64.to_le_bytes(),
            &[13, 0, 2],
            &0.005f64.to_le_bytes(),
        ]
        .concat();
        assert_eq!(d.bytes(), &expected[..]);
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis_and_the_datagram_bounded() {
        let mut d = Datagram::new(kind::REQUEST, 1, 1, 0.0);
        d.text(210, b"ABCDEFGHIJKLMNOPQRST", 15);
        assert_eq!(&d.bytes()[24..], &[[210, 0, 4, 15, 0].as_slice(), b"ABCDEFGHIJKL..."].concat()[..]);
        for _ in 0..100 {
            d.f64s(111, &[1.0; 128]);
        }
        assert!(d.bytes().len() <= MAX_DATAGRAM);
    }
}
