//! A small MaxMind DB writer for tests (feature `testkit`): tests build their own `.mmdb`
//! files instead of shipping third-party databases.
//!
//! It follows the MaxMind DB format 2.0: an IPv6 binary search tree (IPv4 networks at
//! `::/96`) with 24-, 28- or 32-bit records, 16 zero bytes, the data section (maps, UTF-8
//! strings, unsigned integers, arrays), then `\xAB\xCD\xEFMaxMind.com` and the metadata map.
//! Insert broader networks before narrower ones inside them.
//!
//! ```
//! use pv_security::country::testkit::{sample_db, Shape};
//! let bytes = sample_db(Shape::GeoIp2);
//! let geo = pv_security::country::GeoDb::from_bytes(bytes, "test.mmdb".as_ref()).unwrap();
//! assert_eq!(geo.lookup("81.2.69.5".parse().unwrap()).unwrap().as_str(), "GB");
//! ```

use ipnet::IpNet;

/// A value in the data section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A map with string keys (kept in this order).
    Map(Vec<(String, Value)>),
    /// A UTF-8 string.
    Str(String),
    /// An unsigned 16-bit integer.
    U16(u16),
    /// An unsigned 32-bit integer.
    U32(u32),
    /// An unsigned 64-bit integer.
    U64(u64),
    /// An array.
    Array(Vec<Value>),
}

impl Value {
    /// A map from `(key, value)` pairs.
    pub fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    /// A string.
    pub fn str(text: &str) -> Value {
        Value::Str(text.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    Empty,
    Node(usize),
    Data(usize),
}

/// Builds one MaxMind DB file in memory.
#[derive(Debug, Clone)]
pub struct MmdbWriter {
    database_type: String,
    record_size: u16,
    build_epoch: u64,
    nodes: Vec<[Record; 2]>,
    data: Vec<u8>,
    encoded: Vec<(Vec<u8>, usize)>,
}

impl MmdbWriter {
    /// An empty IPv6 database of type `database_type` with 28-bit records.
    pub fn new(database_type: &str) -> Self {
        Self {
            database_type: database_type.to_string(),
            record_size: 28,
            build_epoch: 1_767_225_600,
            nodes: vec![[Record::Empty; 2]],
            data: Vec::new(),
            encoded: Vec::new(),
        }
    }

    /// Use 24-, 28- or 32-bit records (other values are written as given, for tests of bad
    /// files).
    pub fn record_size(mut self, bits: u16) -> Self {
        self.record_size = bits;
        self
    }

    /// Map `network` (host bits ignored; IPv4 networks go under `::/96`) to `value`.
    pub fn insert(&mut self, network: IpNet, value: &Value) -> &mut Self {
        let (addr, prefix) = match network.trunc() {
            IpNet::V4(n) => (u128::from(u32::from(n.addr())), 96 + usize::from(n.prefix_len())),
            IpNet::V6(n) => (u128::from(n.addr()), usize::from(n.prefix_len())),
        };
        let offset = self.store(value);
        let mut node = 0;
        for depth in 0..prefix {
            let bit = usize::from((addr >> (127 - depth)) & 1 == 1);
            if depth + 1 == prefix {
                self.nodes[node][bit] = Record::Data(offset);
                break;
            }
            node = match self.nodes[node][bit] {
                Record::Node(next) => next,
                other => {
                    // Empty, or a broader network's data pushed one level down.
                    self.nodes.push([other; 2]);
                    let next = self.nodes.len() - 1;
                    self.nodes[node][bit] = Record::Node(next);
                    next
                }
            };
        }
        self
    }

    fn store(&mut self, value: &Value) -> usize {
        let mut bytes = Vec::new();
        encode(value, &mut bytes);
        if let Some((_, offset)) = self.encoded.iter().find(|(b, _)| *b == bytes) {
            return *offset;
        }
        let offset = self.data.len();
        self.data.extend_from_slice(&bytes);
        self.encoded.push((bytes, offset));
        offset
    }

    /// The database file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let node_count = self.nodes.len();
        let value = |r: Record| -> u32 {
            let v = match r {
                Record::Empty => node_count,
                Record::Node(n) => n,
                Record::Data(off) => node_count + 16 + off,
            };
            u32::try_from(v).unwrap_or(u32::MAX)
        };
        let mut out = Vec::new();
        for [l, r] in &self.nodes {
            let (l, r) = (value(*l), value(*r));
            match self.record_size {
                24 => {
                    out.extend_from_slice(&l.to_be_bytes()[1..]);
                    out.extend_from_slice(&r.to_be_bytes()[1..]);
                }
                28 => {
                    out.extend_from_slice(&l.to_be_bytes()[1..]);
                    // The middle byte: the left record's top nibble, then the right's.
                    let high = (((l >> 24) & 0x0F) << 4) | ((r >> 24) & 0x0F);
                    out.push(u8::try_from(high).unwrap_or(0));
                    out.extend_from_slice(&r.to_be_bytes()[1..]);
                }
                _ => {
                    out.extend_from_slice(&l.to_be_bytes());
                    out.extend_from_slice(&r.to_be_bytes());
                }
            }
        }
        out.extend_from_slice(&[0u8; 16]);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
        let metadata = Value::map([
            ("binary_format_major_version", Value::U16(2)),
            ("binary_format_minor_version", Value::U16(0)),
            ("build_epoch", Value::U64(self.build_epoch)),
            ("database_type", Value::str(&self.database_type)),
            ("description", Value::map([("en", Value::str("PentaVision test database"))])),
            ("ip_version", Value::U16(6)),
            ("languages", Value::Array(vec![Value::str("en")])),
            ("node_count", Value::U32(u32::try_from(node_count).unwrap_or(u32::MAX))),
            ("record_size", Value::U16(self.record_size)),
        ]);
        encode(&metadata, &mut out);
        out
    }
}

/// Write the control byte(s) of a value of MaxMind type `type_num` and `size`.
fn control(type_num: u8, size: usize, out: &mut Vec<u8>) {
    let (type_bits, extended) =
        if type_num <= 7 { (type_num << 5, None) } else { (0, Some(type_num - 7)) };
    let (size_bits, extra): (u8, Vec<u8>) = if size < 29 {
        (size as u8, vec![])
    } else if size < 29 + 256 {
        (29, vec![(size - 29) as u8])
    } else if size < 285 + 65_536 {
        (30, ((size - 285) as u16).to_be_bytes().to_vec())
    } else {
        (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec())
    };
    out.push(type_bits | size_bits);
    if let Some(ext) = extended {
        out.push(ext);
    }
    out.extend_from_slice(&extra);
}

fn uint(type_num: u8, value: u64, out: &mut Vec<u8>) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(type_num, bytes.len() - skip, out);
    out.extend_from_slice(&bytes[skip..]);
}

fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Str(s) => {
            control(2, s.len(), out);
            out.extend_from_slice(s.as_bytes());
        }
        Value::U16(n) => uint(5, u64::from(*n), out),
        Value::U32(n) => uint(6, u64::from(*n), out),
        Value::U64(n) => uint(9, *n, out),
        Value::Map(entries) => {
            control(7, entries.len(), out);
            for (k, v) in entries {
                encode(&Value::Str(k.clone()), out);
                encode(v, out);
            }
        }
        Value::Array(items) => {
            control(11, items.len(), out);
            for item in items {
                encode(item, out);
            }
        }
    }
}

/// A GeoIP2/GeoLite2-shaped record: `country` and `registered_country` with `iso_code` and
/// English names, like GeoLite2-Country.
pub fn geoip2_record(country: &str, registered: &str) -> Value {
    let part = |code: &str| {
        Value::map([
            (
                "geoname_id",
                Value::U32(1000 + u32::from(code.as_bytes().first().copied().unwrap_or(0))),
            ),
            ("iso_code", Value::str(code)),
            ("names", Value::map([("en", Value::str(&format!("Country {code}")))])),
        ])
    };
    Value::map([
        ("continent", Value::map([("code", Value::str("EU"))])),
        ("country", part(country)),
        ("registered_country", part(registered)),
    ])
}

/// A GeoIP2 record with only `registered_country` (as for some anycast/satellite networks).
pub fn geoip2_registered_only(registered: &str) -> Value {
    Value::map([("registered_country", Value::map([("iso_code", Value::str(registered))]))])
}

/// A flat ip-location-db record: `{country_code}`.
pub fn flat_record(country: &str) -> Value {
    Value::map([("country_code", Value::str(country))])
}

/// The record shape of a [`sample_db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// GeoIP2/GeoLite2 (`country.iso_code`, `registered_country.iso_code`).
    GeoIp2,
    /// ip-location-db (`country_code`).
    Flat,
}

/// The networks of [`sample_db`]: `81.2.69.0/24` GB, `89.160.20.0/24` SE, `2001:db8:1::/48`
/// DE, and (GeoIP2 only: registered country alone) `175.16.199.0/24` CN.
pub const SAMPLE: [(&str, &str); 3] =
    [("81.2.69.0/24", "GB"), ("89.160.20.0/24", "SE"), ("2001:db8:1::/48", "DE")];

/// A small database of `shape` holding [`SAMPLE`] (28-bit records).
pub fn sample_db(shape: Shape) -> Vec<u8> {
    let mut w = MmdbWriter::new(match shape {
        Shape::GeoIp2 => "GeoLite2-Country",
        Shape::Flat => "ip-location-db-country",
    });
    for (net, code) in SAMPLE {
        let Ok(net) = net.parse::<IpNet>() else { continue };
        let record = match shape {
            Shape::GeoIp2 => geoip2_record(code, code),
            Shape::Flat => flat_record(code),
        };
        w.insert(net, &record);
    }
    if shape == Shape::GeoIp2
        && let Ok(net) = "175.16.199.0/24".parse::<IpNet>()
    {
        w.insert(net, &geoip2_registered_only("CN"));
    }
    w.to_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::country::GeoDb;

    #[test]
    fn every_record_size_reads_back_and_verifies() {
        for bits in [24, 28, 32] {
            let mut w = MmdbWriter::new("Test").record_size(bits);
            w.insert("81.2.69.0/24".parse().unwrap(), &flat_record("GB"));
            w.insert("2001:db8:1::/48".parse().unwrap(), &flat_record("DE"));
            // A long string exercises the extended size encodings.
            w.insert(
                "89.160.20.0/24".parse().unwrap(),
                &Value::map([
                    ("country_code", Value::str("SE")),
                    ("note", Value::str(&"x".repeat(300))),
                ]),
            );
            let bytes = w.to_bytes();
            let reader = maxminddb::Reader::from_source(bytes.clone()).unwrap();
            reader.verify().unwrap();
            assert_eq!(reader.metadata().record_size, bits);
            let geo = GeoDb::from_bytes(bytes, "t.mmdb".as_ref()).unwrap();
            let look = |ip: &str| geo.lookup(ip.parse().unwrap()).map(|c| c.to_string());
            assert_eq!(look("81.2.69.200").as_deref(), Some("GB"), "{bits}");
            assert_eq!(look("89.160.20.1").as_deref(), Some("SE"), "{bits}");
            assert_eq!(look("2001:db8:1:ffff::1").as_deref(), Some("DE"), "{bits}");
            assert_eq!(look("81.2.70.1"), None, "{bits}");
            assert_eq!(look("2001:db8:2::1"), None, "{bits}");
        }
    }

    #[test]
    fn nested_networks_push_data_down() {
        let mut w = MmdbWriter::new("Test");
        w.insert("81.2.0.0/16".parse().unwrap(), &flat_record("GB"));
        w.insert("81.2.69.0/24".parse().unwrap(), &flat_record("IE"));
        let geo = GeoDb::from_bytes(w.to_bytes(), "t.mmdb".as_ref()).unwrap();
        assert_eq!(geo.lookup("81.2.1.1".parse().unwrap()).unwrap().as_str(), "GB");
        assert_eq!(geo.lookup("81.2.69.1".parse().unwrap()).unwrap().as_str(), "IE");
    }
}
