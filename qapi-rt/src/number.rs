//! [`Number`]: QAPI's `number`, a float that is `Eq`, `Ord` and `Hash`,
//! so that a type keeps those derives whatever a newer QEMU adds inside
//! it.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

/// A QAPI `number` (a JSON number read as `f64`), as every generated type
/// holds it.
///
/// A plain `f64` has no `Eq` or `Hash`, so a type holding one can't
/// derive them, and a QEMU that adds a `number` member deep inside a type
/// would take them away from every type around it. `Number` compares and
/// hashes by [`f64::total_cmp`] (IEEE 754's total order: `-0.0 < 0.0`,
/// and a NaN equals itself), so every generated type derives `Eq` and
/// `Hash`. It reads and writes as the plain JSON number.
///
/// ```
/// use qapi_rt::Number;
/// let n = Number::from(12.5);
/// assert_eq!(n.get(), 12.5);
/// assert_eq!(f64::from(n) * 2.0, 25.0);
/// assert_eq!(serde_json::to_string(&n).unwrap(), "12.5");
/// let back: Number = serde_json::from_str("3").unwrap();
/// assert_eq!(back, Number::from(3.0));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Number(pub f64);

impl Number {
    /// The value.
    pub const fn get(self) -> f64 {
        self.0
    }
}

impl From<f64> for Number {
    fn from(v: f64) -> Number {
        Number(v)
    }
}

impl From<f32> for Number {
    fn from(v: f32) -> Number {
        Number(f64::from(v))
    }
}

impl From<i32> for Number {
    fn from(v: i32) -> Number {
        Number(f64::from(v))
    }
}

impl From<u32> for Number {
    fn from(v: u32) -> Number {
        Number(f64::from(v))
    }
}

impl From<Number> for f64 {
    fn from(n: Number) -> f64 {
        n.0
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Number) -> bool {
        self.0.total_cmp(&other.0) == Ordering::Equal
    }
}

impl Eq for Number {}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Hash for Number {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Equal under `total_cmp` means the same bits.
        self.0.to_bits().hash(state);
    }
}

impl PartialEq<f64> for Number {
    fn eq(&self, other: &f64) -> bool {
        *self == Number(*other)
    }
}

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl serde::Serialize for Number {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Number, D::Error> {
        f64::deserialize(d).map(Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn equal_numbers_hash_alike_and_order_is_total() {
        let nan = Number(f64::NAN);
        assert_eq!(nan, nan);
        let set: HashSet<Number> = [Number(1.5), Number(1.5), nan, nan].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert!(Number(-0.0) < Number(0.0));
        assert!(Number(1.0) < Number(2.0));
        assert!(Number(2.0) == 2.0);
    }
}
