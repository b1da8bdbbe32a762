//! Just enough BER-TLV to read FCIs: one- or two-byte tags, one- or two-byte lengths.

use crate::Reader;

/// Iterates over the TLVs of `bytes`, yielding (tag, value); stops at the first malformed one.
pub fn iter(bytes: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut r = Reader::new(bytes);
    core::iter::from_fn(move || {
        let rest = r.rest();
        let first = *rest.first()?;
        let tag_len = if first & 0x1F == 0x1F { 2 } else { 1 };
        let tag = r.take(tag_len).ok()?;
        let len = match r.u8().ok()? {
            0x81 => usize::from(r.u8().ok()?),
            n if n < 0x80 => usize::from(n),
            _ => return None,
        };
        let value = r.take(len).ok()?;
        Some((tag, value))
    })
}

/// The value at `path` (a tag per nesting level), e.g. `[&[0x6F], &[0xA5], &[0x9F, 0x0C]]`.
pub fn find<'a>(bytes: &'a [u8], path: &[&[u8]]) -> Option<&'a [u8]> {
    let (first, rest) = path.split_first()?;
    let value = iter(bytes).find(|(tag, _)| tag == first)?.1;
    if rest.is_empty() {
        Some(value)
    } else {
        find(value, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values_and_survives_garbage() {
        let fci = [0x6F, 0x09, 0x84, 0x01, 0xAA, 0xA5, 0x04, 0x9F, 0x0C, 0x01, 0x42];
        assert_eq!(find(&fci, &[&[0x6F], &[0xA5], &[0x9F, 0x0C]]), Some(&[0x42][..]));
        assert_eq!(find(&fci, &[&[0x6F], &[0x84]]), Some(&[0xAA][..]));
        assert_eq!(find(&fci, &[&[0x6F], &[0x50]]), None);
        assert_eq!(find(&fci[..6], &[&[0x6F], &[0xA5]]), None);
        assert_eq!(find(&[0x9F], &[&[0x9F, 0x0C]]), None);
        assert_eq!(find(&[0x6F, 0xFF, 0x00], &[&[0x6F]]), None);
    }
}
