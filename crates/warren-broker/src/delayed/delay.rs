//! The `x-delay` header: how long a message is held, and how it reads once routed.
//!
//! RabbitMQ's plugin (`rabbit_delayed_message_utils`, the 3.10 release) takes every
//! integer field type as is, truncates `float` and `double`, and parses a `longstr` as a
//! decimal integer; any other type means "no delay". A delay is held only when it is above
//! 0 and at most 2^32 - 1 ms (Erlang's largest timer); anything else routes at once. (The
//! plugin crashes the channel on a non-numeric string or a `decimal`; Warren routes those
//! at once.) When the message is routed the plugin sets `x-delay` to `-delay` (a signed
//! 32-bit integer) and sorts the header table, so that it is not delayed again downstream.
//!
//! LavinMQ takes only integer types (same bounds) and removes `x-delay` when it routes.

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldTable};

use super::DelayForm;

/// The longest delay held: 2^32 - 1 ms (about 49.7 days), as both products.
pub(crate) const MAX_DELAY_MS: u64 = u32::MAX as u64;

/// The delay `headers` ask for, in ms, if the message is to be held at all.
pub(crate) fn delay_of(headers: Option<&FieldTable>, form: DelayForm) -> Option<u64> {
    let value = headers?.inner().get("x-delay")?;
    let delay = requested(value, form)?;
    (delay > 0 && delay <= i128::from(MAX_DELAY_MS)).then_some(delay as u64)
}

/// The number an `x-delay` value stands for, whatever its sign or size.
fn requested(value: &AMQPValue, form: DelayForm) -> Option<i128> {
    let plugin = form == DelayForm::Plugin;
    Some(match value {
        AMQPValue::ShortShortInt(v) => i128::from(*v),
        AMQPValue::ShortShortUInt(v) => i128::from(*v),
        AMQPValue::ShortInt(v) => i128::from(*v),
        AMQPValue::ShortUInt(v) => i128::from(*v),
        AMQPValue::LongInt(v) => i128::from(*v),
        AMQPValue::LongUInt(v) => i128::from(*v),
        AMQPValue::LongLongInt(v) => i128::from(*v),
        // `as` saturates and maps NaN to 0 (Erlang has neither NaN nor infinities).
        AMQPValue::Float(v) if plugin => v.trunc() as i128,
        AMQPValue::Double(v) if plugin => v.trunc() as i128,
        AMQPValue::LongString(s) if plugin => integer(s.as_bytes())?,
        AMQPValue::ShortString(s) if plugin => integer(s.as_str().as_bytes())?,
        _ => return None,
    })
}

/// A decimal integer as Erlang's `binary_to_integer` reads it: an optional sign, then
/// digits only.
fn integer(text: &[u8]) -> Option<i128> {
    let text = std::str::from_utf8(text).ok()?;
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i128>().ok()
}

/// The properties a held message is routed with: `x-delay` replaced by `-delay` (plugin)
/// or removed (LavinMQ); everything else as published.
pub(crate) fn routed_properties(
    mut properties: BasicProperties,
    form: DelayForm,
) -> BasicProperties {
    let Some(mut headers) = properties.headers().clone() else {
        return properties;
    };
    match form {
        DelayForm::Plugin => {
            let Some(delay) = headers
                .inner()
                .get("x-delay")
                .and_then(|v| requested(v, form))
            else {
                return properties;
            };
            let negated = -delay;
            let value = match i32::try_from(negated) {
                Ok(v) => AMQPValue::LongInt(v),
                Err(_) => AMQPValue::LongLongInt(i64::try_from(negated).unwrap_or(i64::MIN)),
            };
            headers.insert("x-delay".into(), value);
        }
        DelayForm::LavinMq => {
            let kept: std::collections::BTreeMap<_, _> = headers
                .inner()
                .iter()
                .filter(|(key, _)| key.as_str() != "x-delay")
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            headers = FieldTable::from(kept);
        }
    }
    properties = properties.with_headers(headers);
    properties
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: AMQPValue) -> FieldTable {
        let mut table = FieldTable::default();
        table.insert("x-delay".into(), value);
        table
    }

    #[test]
    fn integers_of_every_width_delay_when_positive_and_in_range() {
        use AMQPValue::*;
        for value in [
            ShortShortInt(5),
            ShortShortUInt(5),
            ShortInt(5),
            ShortUInt(5),
            LongInt(5),
            LongUInt(5),
            LongLongInt(5),
        ] {
            for form in [DelayForm::Plugin, DelayForm::LavinMq] {
                assert_eq!(delay_of(Some(&with(value.clone())), form), Some(5));
            }
        }
        for value in [
            LongInt(0),
            LongInt(-300),
            LongLongInt(i64::from(u32::MAX) + 1),
        ] {
            assert_eq!(delay_of(Some(&with(value)), DelayForm::Plugin), None);
        }
        assert_eq!(
            delay_of(
                Some(&with(LongLongInt(i64::from(u32::MAX)))),
                DelayForm::Plugin
            ),
            Some(MAX_DELAY_MS)
        );
        assert_eq!(delay_of(None, DelayForm::Plugin), None);
        assert_eq!(
            delay_of(
                Some(&amq_protocol::types::FieldTable::default()),
                DelayForm::Plugin
            ),
            None
        );
    }

    #[test]
    fn the_plugin_also_reads_floats_and_numeric_strings_lavinmq_does_not() {
        use AMQPValue::*;
        for (value, plugin) in [
            (Double(250.9), Some(250)),
            (Float(2.5), Some(2)),
            (LongString("300".into()), Some(300)),
            (LongString("+7".into()), Some(7)),
            (LongString("-7".into()), None),
            (LongString("3s".into()), None),
            (LongString(" 3".into()), None),
            (Boolean(true), None),
            (Timestamp(5), None),
        ] {
            assert_eq!(
                delay_of(Some(&with(value.clone())), DelayForm::Plugin),
                plugin,
                "{value:?}"
            );
            assert_eq!(delay_of(Some(&with(value)), DelayForm::LavinMq), None);
        }
    }

    #[test]
    fn routing_negates_x_delay_for_the_plugin_and_removes_it_for_lavinmq() {
        let mut headers = with(AMQPValue::LongUInt(300));
        headers.insert("a".into(), AMQPValue::LongString("b".into()));
        let properties = BasicProperties::default()
            .with_headers(headers)
            .with_delivery_mode(2);
        let plugin = routed_properties(properties.clone(), DelayForm::Plugin);
        let got = plugin.headers().clone().expect("headers");
        assert_eq!(got.inner().get("x-delay"), Some(&AMQPValue::LongInt(-300)));
        assert_eq!(
            got.inner().get("a"),
            Some(&AMQPValue::LongString("b".into()))
        );
        assert_eq!(*plugin.delivery_mode(), Some(2));
        let lavinmq = routed_properties(properties, DelayForm::LavinMq);
        let got = lavinmq.headers().clone().expect("headers");
        assert!(!got.contains_key("x-delay"));
        assert!(got.contains_key("a"));
    }
}
