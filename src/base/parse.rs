//! Parsing at the edge: a string scalar in a YAML or JSON document becomes a checked type
//! (a digest, a platform, a version) through its `FromStr`, or a located error.

use std::fmt;

/// Deserializes a string scalar through `FromStr`.
///
/// Errors raised inside a visitor carry the scalar's own position; errors raised after
/// `String::deserialize` would point at the enclosing mapping instead.
pub(crate) struct ParseVisitor<T> {
    expecting: &'static str,
    _t: std::marker::PhantomData<T>,
}

impl<T> ParseVisitor<T> {
    /// A visitor that describes what it expects with `expecting`.
    pub(crate) fn new(expecting: &'static str) -> Self {
        Self {
            expecting,
            _t: std::marker::PhantomData,
        }
    }
}

impl<T> serde::de::Visitor<'_> for ParseVisitor<T>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }
}
