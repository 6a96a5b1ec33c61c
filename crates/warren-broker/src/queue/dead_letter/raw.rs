//! Field tables and basic properties as bytes, in the order they were written.
//!
//! amq-protocol's `FieldTable` is a sorted map, but the order of a table's fields is
//! visible to every client that keeps it (pika, kombu, amqplib, the PHP and .NET clients),
//! and RabbitMQ keeps it: it sorts the header table it rewrites when dead-lettering and the
//! `x-death` entries it updates, but writes a new entry unsorted (`count` first) and leaves
//! the other entries, and every value it does not touch, as they came. So the dead-letter
//! rewrite works on [`RawTable`]: fields in their order, each value kept as its encoded
//! bytes (type octet included) and decoded only when looked at, so nested tables pass
//! through byte for byte. [`replace_headers`] puts the new header table into the
//! published property bytes and drops `expiration`, leaving every other property as it
//! was sent.

use amq_protocol::types::AMQPValue;
use amq_protocol::types::parsing::parse_value;

/// A field table: `(name, encoded value)` in order; the value bytes start with the type
/// octet. Duplicate names are kept as they came (lookups see the first, as Erlang's
/// `lists:keyfind`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct RawTable {
    fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Encoded bytes that do not parse as what they claim to be.
#[derive(Debug)]
pub(super) struct Malformed;

impl RawTable {
    /// Parse a table from `bytes`: a 32-bit length, then the fields. Returns the table and
    /// the bytes after it.
    pub(super) fn parse(bytes: &[u8]) -> Result<(RawTable, &[u8]), Malformed> {
        let (mut body, rest) = split_sized(bytes)?;
        let mut fields = Vec::new();
        while !body.is_empty() {
            let (&len, after) = body.split_first().ok_or(Malformed)?;
            let len = usize::from(len);
            if after.len() < len {
                return Err(Malformed);
            }
            let (name, after) = after.split_at(len);
            let value_len = value_len(after)?;
            let (value, after) = after.split_at(value_len);
            fields.push((name.to_vec(), value.to_vec()));
            body = after;
        }
        Ok((RawTable { fields }, rest))
    }

    /// The raw (type-prefixed) bytes of the first field called `name`.
    pub(super) fn raw(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// The decoded value of the first field called `name`.
    pub(super) fn get(&self, name: &str) -> Option<AMQPValue> {
        decode(self.raw(name)?)
    }

    /// The string value (long or short string) of `name`.
    pub(super) fn string(&self, name: &str) -> Option<Vec<u8>> {
        match self.get(name)? {
            AMQPValue::LongString(s) => Some(s.as_bytes().to_vec()),
            AMQPValue::ShortString(s) => Some(s.as_str().as_bytes().to_vec()),
            _ => None,
        }
    }

    /// The field names, in order.
    #[cfg(test)]
    pub(super) fn names(&self) -> impl Iterator<Item = &[u8]> {
        self.fields.iter().map(|(n, _)| n.as_slice())
    }

    /// Erlang's `lists:keystore`: replace the first field called `name` in place, or
    /// append it.
    pub(super) fn store(&mut self, name: &str, value: Vec<u8>) {
        match self.fields.iter_mut().find(|(n, _)| n == name.as_bytes()) {
            Some((_, v)) => *v = value,
            None => self.fields.push((name.as_bytes().to_vec(), value)),
        }
    }

    /// Put `name` first.
    pub(super) fn prepend(&mut self, name: &str, value: Vec<u8>) {
        self.fields.insert(0, (name.as_bytes().to_vec(), value));
    }

    /// Erlang's `lists:keydelete`: remove the first field called `name`.
    pub(super) fn remove(&mut self, name: &str) {
        if let Some(at) = self.fields.iter().position(|(n, _)| n == name.as_bytes()) {
            self.fields.remove(at);
        }
    }

    /// RabbitMQ's `set_table_value`: store, then sort by name.
    pub(super) fn set(&mut self, name: &str, value: Vec<u8>) {
        self.store(name, value);
        self.sort();
    }

    /// RabbitMQ's `sort_field_table` (a stable sort by name, bytewise).
    pub(super) fn sort(&mut self) {
        self.fields.sort_by(|a, b| a.0.cmp(&b.0));
    }

    /// The table encoded as a field-table value (type octet `F` included).
    pub(super) fn to_value(&self) -> Vec<u8> {
        let mut out = vec![b'F'];
        self.encode(&mut out);
        out
    }

    /// Append the table (32-bit length, then the fields) to `out`.
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        for (name, value) in &self.fields {
            out.push(name.len() as u8); // names come from parsed short strings or constants
            out.extend_from_slice(name);
            out.extend_from_slice(value);
        }
        let len = (out.len() - start - 4) as u32;
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }
}

/// The elements of an encoded field array value (type octet `A` included), each as its
/// raw bytes; `None` when `value` is not an array.
pub(super) fn array_elements(value: &[u8]) -> Result<Option<Vec<&[u8]>>, Malformed> {
    let Some((b'A', sized)) = value.split_first() else {
        return Ok(None);
    };
    let (mut body, _) = split_sized(sized)?;
    let mut elements = Vec::new();
    while !body.is_empty() {
        let (element, rest) = body.split_at(value_len(body)?);
        elements.push(element);
        body = rest;
    }
    Ok(Some(elements))
}

/// The table in an encoded field-table value (type octet `F` included), if it is one.
pub(super) fn table_value(value: &[u8]) -> Option<RawTable> {
    match value.split_first() {
        Some((b'F', sized)) => RawTable::parse(sized).ok().map(|(table, _)| table),
        _ => None,
    }
}

/// An array value made of already encoded elements.
pub(super) fn array(elements: &[Vec<u8>]) -> Vec<u8> {
    let len: usize = elements.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(5 + len);
    out.push(b'A');
    out.extend_from_slice(&(len as u32).to_be_bytes());
    for element in elements {
        out.extend_from_slice(element);
    }
    out
}

/// A long-string value.
pub(super) fn long_string(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + s.len());
    out.push(b'S');
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
    out
}

/// A signed 64-bit value (RabbitMQ's `long`, type `l`).
pub(super) fn long(n: i64) -> Vec<u8> {
    let mut out = vec![b'l'];
    out.extend_from_slice(&n.to_be_bytes());
    out
}

/// A timestamp value (seconds).
pub(super) fn timestamp(seconds: u64) -> Vec<u8> {
    let mut out = vec![b'T'];
    out.extend_from_slice(&seconds.to_be_bytes());
    out
}

/// Decode one raw value (type octet included).
pub(super) fn decode(raw: &[u8]) -> Option<AMQPValue> {
    parse_value(raw).ok().map(|(_, value)| value)
}

/// The length of the value at the start of `bytes` (type octet included).
fn value_len(bytes: &[u8]) -> Result<usize, Malformed> {
    match parse_value(bytes) {
        Ok((rest, _)) => Ok(bytes.len() - rest.len()),
        Err(_) => Err(Malformed),
    }
}

/// Split a 32-bit-length-prefixed block off the front of `bytes`.
fn split_sized(bytes: &[u8]) -> Result<(&[u8], &[u8]), Malformed> {
    let (len, rest) = bytes.split_first_chunk::<4>().ok_or(Malformed)?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return Err(Malformed);
    }
    Ok(rest.split_at(len))
}

/// Basic property flags, in the order their values follow the flags.
#[cfg(test)]
const CONTENT_TYPE: u16 = 0x8000;
const HEADERS: u16 = 0x2000;
const DELIVERY_MODE: u16 = 0x1000;
const PRIORITY: u16 = 0x0800;
const EXPIRATION: u16 = 0x0100;
const TIMESTAMP: u16 = 0x0040;

/// The header table and the `expiration` value in published basic-property bytes (flags
/// then values), each if present.
pub(super) fn headers_and_expiration(
    properties: &[u8],
) -> Result<(Option<RawTable>, Option<Vec<u8>>), Malformed> {
    let (mut headers, mut expiration) = (None, None);
    walk(properties, |flag, value| match flag {
        HEADERS => headers = Some(RawTable::parse(value).map(|(table, _)| table)),
        EXPIRATION => expiration = value.get(1..).map(<[u8]>::to_vec),
        _ => {}
    })?;
    Ok((headers.transpose()?, expiration))
}

/// The header table in published basic-property bytes, if any.
#[cfg(test)]
pub(super) fn headers(properties: &[u8]) -> Result<Option<RawTable>, Malformed> {
    headers_and_expiration(properties).map(|(headers, _)| headers)
}

/// `properties` with the header table replaced by `headers` (an encoded table: length, then
/// fields) and `expiration` removed; every other property keeps its bytes.
pub(super) fn replace_headers(properties: &[u8], headers: &[u8]) -> Result<Vec<u8>, Malformed> {
    let (flags, _) = properties.split_first_chunk::<2>().ok_or(Malformed)?;
    let flags = u16::from_be_bytes(*flags);
    let new_flags = (flags | HEADERS) & !EXPIRATION;
    let mut out = Vec::with_capacity(properties.len() + 64);
    out.extend_from_slice(&new_flags.to_be_bytes());
    let mut written = false;
    walk(properties, |flag, value| {
        if flag <= HEADERS && !written {
            out.extend_from_slice(headers);
            written = true;
        }
        if flag != HEADERS && flag != EXPIRATION {
            out.extend_from_slice(value);
        }
    })?;
    if !written {
        out.extend_from_slice(headers);
    }
    Ok(out)
}

/// `properties` with the header `name` set to the long (signed 64-bit) `value` as
/// RabbitMQ's `rabbit_basic:add_header` does (replaced in place, else appended; a header
/// table made if there was none), or removed when `value` is `None` (the table stays, even
/// if empty). Every other property keeps its bytes, `expiration` included. `None` when the
/// properties do not parse.
pub(in crate::queue) fn with_long_header(
    properties: &[u8],
    name: &str,
    value: Option<i64>,
) -> Option<Vec<u8>> {
    let (flags, _) = properties.split_first_chunk::<2>()?;
    let flags = u16::from_be_bytes(*flags);
    let mut table = match headers_and_expiration(properties).ok()?.0 {
        Some(table) => table,
        None if value.is_none() => return Some(properties.to_vec()),
        None => RawTable::default(),
    };
    match value {
        Some(v) => table.store(name, long(v)),
        None => table.remove(name),
    }
    let mut encoded = Vec::new();
    table.encode(&mut encoded);
    let mut out = Vec::with_capacity(properties.len() + 32);
    out.extend_from_slice(&(flags | HEADERS).to_be_bytes());
    let mut written = false;
    walk(properties, |flag, bytes| {
        if flag <= HEADERS && !written {
            out.extend_from_slice(&encoded);
            written = true;
        }
        if flag != HEADERS {
            out.extend_from_slice(bytes);
        }
    })
    .ok()?;
    if !written {
        out.extend_from_slice(&encoded);
    }
    Some(out)
}

/// Call `each(flag, value bytes)` for every property present, in order. Fails on a
/// continuation flag (no basic property needs one) or bytes that end early.
fn walk(properties: &[u8], mut each: impl FnMut(u16, &[u8])) -> Result<(), Malformed> {
    let (flags, mut rest) = properties.split_first_chunk::<2>().ok_or(Malformed)?;
    let flags = u16::from_be_bytes(*flags);
    if flags & 1 != 0 {
        return Err(Malformed);
    }
    let mut flag = 0x8000u16;
    while flag > 1 {
        if flags & flag != 0 {
            let len = match flag {
                HEADERS => {
                    4 + u32::from_be_bytes(*rest.first_chunk::<4>().ok_or(Malformed)?) as usize
                }
                DELIVERY_MODE | PRIORITY => 1,
                TIMESTAMP => 8,
                _ => 1 + usize::from(*rest.first().ok_or(Malformed)?),
            };
            if rest.len() < len {
                return Err(Malformed);
            }
            let (value, after) = rest.split_at(len);
            each(flag, value);
            rest = after;
        }
        flag >>= 1;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_table_keeps_its_order_and_its_bytes() {
        let mut table = RawTable::default();
        table.store("b", long(1));
        table.store("a", long_string(b"x"));
        let mut bytes = Vec::new();
        table.encode(&mut bytes);
        let (parsed, rest) = RawTable::parse(&bytes).unwrap();
        assert!(rest.is_empty());
        assert_eq!(parsed, table);
        assert_eq!(parsed.get("b"), Some(AMQPValue::LongLongInt(1)));
        assert_eq!(parsed.string("a").as_deref(), Some(&b"x"[..]));
    }

    #[test]
    fn set_sorts_store_does_not() {
        let mut table = RawTable::default();
        table.store("b", long(1));
        table.store("a", long(2));
        table.store("b", long(3));
        assert_eq!(table.fields[0].0, b"b");
        table.set("c", long(4));
        let names: Vec<_> = table.fields.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(names, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    }

    #[test]
    fn a_truncated_table_is_malformed() {
        let mut table = RawTable::default();
        table.store("k", long_string(b"value"));
        let mut bytes = Vec::new();
        table.encode(&mut bytes);
        assert!(RawTable::parse(&bytes[..bytes.len() - 1]).is_err());
        assert!(RawTable::parse(&bytes[..3]).is_err());
    }

    fn encoded(table: &RawTable) -> Vec<u8> {
        let mut out = Vec::new();
        table.encode(&mut out);
        out
    }

    /// content-type "t", headers {z: 1}, delivery-mode 2, expiration "5", app-id "a".
    fn published() -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(
            &(CONTENT_TYPE | HEADERS | DELIVERY_MODE | EXPIRATION | 0x0008).to_be_bytes(),
        );
        p.extend_from_slice(&[1, b't']);
        let mut h = RawTable::default();
        h.store("z", long(1));
        h.encode(&mut p);
        p.push(2);
        p.extend_from_slice(&[1, b'5']);
        p.extend_from_slice(&[1, b'a']);
        p
    }

    #[test]
    fn replacing_headers_drops_expiration_and_keeps_the_rest() {
        use amq_protocol::protocol::basic::parse_properties;
        let mut table = RawTable::default();
        table.store("y", long_string(b"new"));
        table.store("x", long(7));
        let out = replace_headers(&published(), &encoded(&table)).unwrap();
        let (_, props) = parse_properties(&out[..]).unwrap();
        assert_eq!(props.content_type().as_ref().map(|s| s.as_str()), Some("t"));
        assert_eq!(*props.delivery_mode(), Some(2));
        assert_eq!(props.expiration(), &None);
        assert_eq!(props.app_id().as_ref().map(|s| s.as_str()), Some("a"));
        assert_eq!(headers(&out).unwrap(), Some(table));
    }

    #[test]
    fn replacing_headers_adds_them_where_there_were_none() {
        use amq_protocol::protocol::basic::parse_properties;
        let mut p = Vec::new();
        p.extend_from_slice(&(CONTENT_TYPE | PRIORITY | TIMESTAMP).to_be_bytes());
        p.extend_from_slice(&[1, b't', 9]);
        p.extend_from_slice(&42u64.to_be_bytes());
        assert_eq!(headers(&p).unwrap(), None);
        let mut table = RawTable::default();
        table.store("k", long(1));
        let out = replace_headers(&p, &encoded(&table)).unwrap();
        let (_, props) = parse_properties(&out[..]).unwrap();
        assert_eq!(*props.priority(), Some(9));
        assert_eq!(*props.timestamp(), Some(42));
        assert_eq!(headers(&out).unwrap(), Some(table));
    }

    #[test]
    fn truncated_properties_are_malformed() {
        let p = published();
        assert!(headers(&p[..p.len() - 1]).is_err());
        assert!(replace_headers(&p[..1], &encoded(&RawTable::default())).is_err());
    }
}
