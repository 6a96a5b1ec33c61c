//! A bound on field-table nesting, checked before amq-protocol parses a payload.
//!
//! amq-protocol parses field tables and arrays recursively, and so does dropping the
//! parsed value. Each level costs a few hundred bytes of frame payload but kilobytes of
//! stack: one 128 KiB method frame of nested arrays overflows an 8 MiB stack and aborts
//! the whole broker, and `connection.start-ok` carries such a table before the peer has
//! authenticated. So the payload's one field table (methods carry at most one; content
//! headers carry it in the `headers` property) is walked here first, without recursion
//! deeper than the limit, and a payload nesting deeper than [`MAX_FIELD_NESTING`] is
//! refused. Real traffic nests a few levels (`x-death` is an array of tables).
//!
//! The walk follows amq-protocol's grammar: a malformed payload is left for amq-protocol
//! to reject, which it does at the first malformed byte, never deeper than the walk got.

/// Deepest field-table nesting accepted: the method's (or `headers`') table is level 1,
/// a table or array inside it level 2, and so on.
pub const MAX_FIELD_NESTING: usize = 32;

/// Why the walk stopped early.
enum Stop {
    /// Bytes the grammar does not allow here; amq-protocol will refuse them.
    Malformed,
    /// Nesting deeper than [`MAX_FIELD_NESTING`].
    TooDeep,
}

/// One argument before a method's field table.
#[derive(Clone, Copy)]
enum Arg {
    /// Fixed-size fields (integers, the reserved ticket, a bit-flag octet).
    Octets(usize),
    /// A short string.
    ShortStr,
}

use Arg::{Octets, ShortStr};

/// The arguments that precede the field table of a method, `None` if it has no table.
fn table_prefix(class_id: u16, method_id: u16) -> Option<&'static [Arg]> {
    Some(match (class_id, method_id) {
        // connection.start: version-major, version-minor, server-properties...
        (10, 10) => &[Octets(2)],
        // connection.start-ok: client-properties first.
        (10, 11) => &[],
        // exchange.declare: ticket, exchange, type, flags, arguments.
        (40, 10) => &[Octets(2), ShortStr, ShortStr, Octets(1)],
        // exchange.bind / exchange.unbind: ticket, destination, source, key, flags, arguments.
        (40, 30) | (40, 40) => &[Octets(2), ShortStr, ShortStr, ShortStr, Octets(1)],
        // queue.declare: ticket, queue, flags, arguments.
        (50, 10) => &[Octets(2), ShortStr, Octets(1)],
        // queue.bind: ticket, queue, exchange, key, flags, arguments.
        (50, 20) => &[Octets(2), ShortStr, ShortStr, ShortStr, Octets(1)],
        // queue.unbind: ticket, queue, exchange, key, arguments (no flags).
        (50, 50) => &[Octets(2), ShortStr, ShortStr, ShortStr],
        // basic.consume: ticket, queue, consumer-tag, flags, arguments.
        (60, 20) => &[Octets(2), ShortStr, ShortStr, Octets(1)],
        _ => return None,
    })
}

/// True when the field table in a method payload (class and method ids first) nests
/// deeper than [`MAX_FIELD_NESTING`].
pub(crate) fn method_too_deep(class_id: u16, method_id: u16, payload: &[u8]) -> bool {
    let Some(prefix) = table_prefix(class_id, method_id) else {
        return false;
    };
    let walk = |c: &mut Cursor<'_>| -> Result<(), Stop> {
        c.skip(4)?;
        for arg in prefix {
            match arg {
                Octets(n) => c.skip(*n)?,
                ShortStr => c.short_str()?,
            }
        }
        table(c.long_slice()?, 1)
    };
    matches!(walk(&mut Cursor(payload)), Err(Stop::TooDeep))
}

/// True when the `headers` property of a content header's property list (flags first)
/// nests deeper than [`MAX_FIELD_NESTING`].
pub(crate) fn properties_too_deep(properties: &[u8]) -> bool {
    const CONTENT_TYPE: u16 = 1 << 15;
    const CONTENT_ENCODING: u16 = 1 << 14;
    const HEADERS: u16 = 1 << 13;
    let walk = |c: &mut Cursor<'_>| -> Result<(), Stop> {
        let flags = u16::from_be_bytes([c.u8()?, c.u8()?]);
        if flags & HEADERS == 0 {
            return Ok(());
        }
        if flags & CONTENT_TYPE != 0 {
            c.short_str()?;
        }
        if flags & CONTENT_ENCODING != 0 {
            c.short_str()?;
        }
        table(c.long_slice()?, 1)
    };
    matches!(walk(&mut Cursor(properties)), Err(Stop::TooDeep))
}

/// The entries of a field table at nesting `level`.
fn table(entries: &[u8], level: usize) -> Result<(), Stop> {
    if level > MAX_FIELD_NESTING {
        return Err(Stop::TooDeep);
    }
    let mut c = Cursor(entries);
    while !c.0.is_empty() {
        c.short_str()?;
        value(&mut c, level)?;
    }
    Ok(())
}

/// The values of a field array at nesting `level`.
fn array(values: &[u8], level: usize) -> Result<(), Stop> {
    if level > MAX_FIELD_NESTING {
        return Err(Stop::TooDeep);
    }
    let mut c = Cursor(values);
    while !c.0.is_empty() {
        value(&mut c, level)?;
    }
    Ok(())
}

/// One typed value inside a table or array at nesting `level`; type tags as amq-protocol
/// reads them (RabbitMQ's: `s` is a short int, `l` and `L` both 64-bit).
fn value(c: &mut Cursor<'_>, level: usize) -> Result<(), Stop> {
    match c.u8()? {
        b'V' => Ok(()),
        b't' | b'b' | b'B' => c.skip(1),
        b's' | b'U' | b'u' => c.skip(2),
        b'I' | b'i' | b'f' => c.skip(4),
        b'D' => c.skip(5),
        b'L' | b'l' | b'd' | b'T' => c.skip(8),
        b'S' | b'x' => c.long_slice().map(drop),
        b'A' => array(c.long_slice()?, level + 1),
        b'F' => table(c.long_slice()?, level + 1),
        _ => Err(Stop::Malformed),
    }
}

/// The unread rest of a payload.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        let Some((head, rest)) = self.0.split_at_checked(n) else {
            return Err(Stop::Malformed);
        };
        self.0 = rest;
        Ok(head)
    }

    fn skip(&mut self, n: usize) -> Result<(), Stop> {
        self.take(n).map(drop)
    }

    fn u8(&mut self) -> Result<u8, Stop> {
        match self.take(1)? {
            [b] => Ok(*b),
            _ => Err(Stop::Malformed),
        }
    }

    fn short_str(&mut self) -> Result<(), Stop> {
        let len = self.u8()?;
        self.skip(usize::from(len))
    }

    /// A 32-bit length and that many bytes.
    fn long_slice(&mut self) -> Result<&'a [u8], Stop> {
        let len = self.take(4)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        self.take(len as usize)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// `depth` arrays nested inside one another, as a field value.
    fn nested_arrays(depth: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for _ in 0..depth {
            let mut outer = vec![b'A'];
            outer.extend_from_slice(&(v.len() as u32).to_be_bytes());
            outer.extend_from_slice(&v);
            v = outer;
        }
        v
    }

    fn start_ok_with_value(value: &[u8]) -> Vec<u8> {
        let mut entries = vec![1, b'k'];
        entries.extend_from_slice(value);
        let mut p = vec![0, 10, 0, 11];
        p.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        p.extend_from_slice(&entries);
        p
    }

    #[test]
    fn limit_counts_the_method_table_as_level_one() {
        let at_limit = start_ok_with_value(&nested_arrays(MAX_FIELD_NESTING - 1));
        assert!(!method_too_deep(10, 11, &at_limit));
        let over = start_ok_with_value(&nested_arrays(MAX_FIELD_NESTING));
        assert!(method_too_deep(10, 11, &over));
    }

    #[test]
    fn methods_without_tables_are_never_too_deep() {
        let payload = start_ok_with_value(&nested_arrays(100));
        assert!(!method_too_deep(60, 40, &payload));
    }

    #[test]
    fn malformed_tables_are_left_to_amq_protocol() {
        let mut truncated = start_ok_with_value(&nested_arrays(100));
        truncated.truncate(20);
        assert!(!method_too_deep(10, 11, &truncated));
        assert!(!method_too_deep(10, 11, &[0, 10]));
        assert!(!properties_too_deep(&[0x20]));
    }

    #[test]
    fn headers_after_content_type_and_encoding_are_walked() {
        let mut props = vec![0xE0, 0, 1, b'a', 2, b'b', b'c'];
        let mut entries = vec![1, b'k'];
        entries.extend_from_slice(&nested_arrays(MAX_FIELD_NESTING));
        props.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        props.extend_from_slice(&entries);
        assert!(properties_too_deep(&props));
        props[0] = 0xC0; // headers flag cleared: nothing to walk
        assert!(!properties_too_deep(&props));
    }
}
