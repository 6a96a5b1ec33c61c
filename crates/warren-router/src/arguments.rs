//! Identity of binding arguments: when two `FieldTable`s name the same binding.
//!
//! RabbitMQ stores a binding's arguments as a sorted list of `{Key, Type, Value}` and treats
//! two bindings as the same when the terms are identical (`=:=`), so the AMQP type counts:
//! `{"k": long-string "1"}` and `{"k": long-int 1}` are two different bindings. `FieldTable`
//! is a `BTreeMap`, so key order is already canonical; what `PartialEq` gets wrong for
//! identity is floating point (`NaN != NaN` would make a binding impossible to unbind), so
//! floats are compared by their bits here.

use amq_protocol_types::{AMQPValue, FieldTable};

/// Whether two argument tables identify the same binding: same keys, and for each key the
/// same AMQP type and the same value (floats compared bit for bit).
pub(crate) fn same_arguments(a: &FieldTable, b: &FieldTable) -> bool {
    let (a, b) = (a.inner(), b.inner());
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, va), (kb, vb))| ka == kb && same_value(va, vb))
}

/// Type-and-value identity of two AMQP values, recursively; floats by bits.
pub(crate) fn same_value(a: &AMQPValue, b: &AMQPValue) -> bool {
    use AMQPValue as V;
    match (a, b) {
        (V::Float(x), V::Float(y)) => x.to_bits() == y.to_bits(),
        (V::Double(x), V::Double(y)) => x.to_bits() == y.to_bits(),
        (V::FieldArray(x), V::FieldArray(y)) => {
            let (x, y) = (x.as_slice(), y.as_slice());
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (V::FieldTable(x), V::FieldTable(y)) => same_arguments(x, y),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol_types::{FieldArray, LongString};

    fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in entries {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    #[test]
    fn key_order_does_not_matter() {
        let a = table(&[
            ("a", AMQPValue::LongInt(1)),
            ("b", AMQPValue::Boolean(true)),
        ]);
        let b = table(&[
            ("b", AMQPValue::Boolean(true)),
            ("a", AMQPValue::LongInt(1)),
        ]);
        assert!(same_arguments(&a, &b));
    }

    #[test]
    fn type_matters_for_identity() {
        let a = table(&[("a", AMQPValue::LongInt(1))]);
        let b = table(&[("a", AMQPValue::LongLongInt(1))]);
        let c = table(&[("a", AMQPValue::LongString(LongString::from("1")))]);
        assert!(!same_arguments(&a, &b));
        assert!(!same_arguments(&a, &c));
    }

    #[test]
    fn nan_is_identical_to_itself() {
        let a = table(&[(
            "f",
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::Double(f64::NAN)])),
        )]);
        assert!(same_arguments(&a, &a.clone()));
    }

    #[test]
    fn extra_key_makes_a_different_binding() {
        let a = table(&[("a", AMQPValue::Void)]);
        let b = table(&[("a", AMQPValue::Void), ("b", AMQPValue::Void)]);
        assert!(!same_arguments(&a, &b));
        assert!(!same_arguments(&b, &a));
    }
}
