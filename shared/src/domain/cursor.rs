//! The opaque keyset cursors of the paged lists: base64url of `<tag>:<n>[:<n>…]`, whole numbers
//! after a tag that names the list and its version, the last of them an id (> 0). Each list owns
//! its tag and fields ([`Cursor`](super::product::Cursor) of the catalogue,
//! [`OrderCursor`](super::order::OrderCursor) of the order histories); this module owns the wire
//! format and what a bad cursor is told.

use std::fmt::Write;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::domain::FieldError;

/// A cursor that does not decode is a 422 on its query parameter.
pub fn invalid_cursor() -> FieldError {
    FieldError::new("cursor", "is not a cursor this API returned")
}

/// `parts` joined after `tag`, opaque to clients.
pub fn encode<const N: usize>(tag: &str, parts: [i64; N]) -> String {
    let mut raw = String::from(tag);
    for part in parts {
        // Writing to a String cannot fail.
        let _ = write!(raw, ":{part}");
    }
    URL_SAFE_NO_PAD.encode(raw)
}

/// The `N` numbers of a cursor [`encode`]d with `tag`; `None` for anything else, including a
/// last number (the id) that is not positive.
pub fn decode<const N: usize>(tag: &str, text: &str) -> Option<[i64; N]> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
    let mut fields = raw.split(':');
    if fields.next()? != tag {
        return None;
    }
    let mut parts = [0; N];
    for part in &mut parts {
        *part = fields.next()?.parse().ok()?;
    }
    if fields.next().is_some() || parts.last().is_some_and(|id| *id <= 0) {
        return None;
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_under_their_tag_only() {
        let text = encode("t1", [-3, 42]);
        assert_eq!(URL_SAFE_NO_PAD.decode(&text).unwrap(), b"t1:-3:42");
        assert_eq!(decode("t1", &text), Some([-3, 42]));
        assert_eq!(decode::<2>("t2", &text), None);
        assert_eq!(decode::<1>("t1", &text), None);
        assert_eq!(decode::<3>("t1", &text), None);
        assert_eq!(decode::<1>("t1", &encode("t1", [0])), None);
        assert_eq!(decode::<1>("t1", "not base64!"), None);
    }
}
