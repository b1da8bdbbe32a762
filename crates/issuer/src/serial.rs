//! Application serials and printed card numbers, and their allocation.
//!
//! Scheme (profile choice): the 10-byte serial is 20 BCD digits, the issuer's city code (4
//! digits) then a sequence number (16 digits) — `1000 0000000000123456` is Beijing's card
//! 123,456. The printed card number is the serial without its first digit (19 digits), as EF15
//! readers show it. The city prefix keeps serials of different issuers apart, so that the ASN8
//! that diversifies card keys is unique across the cities too.

use std::fmt;

use crate::IssueError;

/// The largest sequence number: 16 decimal digits.
pub const SEQUENCE_MAX: u64 = 9_999_999_999_999_999;
const SEQUENCE_DIGITS: usize = 16;

/// An application serial (EF15 bytes 10-19).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Serial(pub [u8; 10]);

impl Serial {
    /// The serial of sequence number `sequence` of the issuer of `city_code`.
    pub fn from_parts(city_code: u16, sequence: u64) -> Result<Self, IssueError> {
        if !is_bcd(&city_code.to_be_bytes()) {
            return Err(IssueError::InvalidCityCode { city_code });
        }
        if sequence > SEQUENCE_MAX {
            return Err(IssueError::SerialsExhausted { city_code });
        }
        let mut serial = [0u8; 10];
        serial[..2].copy_from_slice(&city_code.to_be_bytes());
        let digits = format!("{sequence:0SEQUENCE_DIGITS$}");
        for (byte, pair) in serial[2..].iter_mut().zip(digits.as_bytes().chunks(2)) {
            *byte = ((pair[0] - b'0') << 4) | (pair[1] - b'0');
        }
        Ok(Serial(serial))
    }

    /// The city code this scheme puts in the first two bytes.
    pub fn city_code(&self) -> u16 {
        u16::from_be_bytes([self.0[0], self.0[1]])
    }

    /// The sequence number, if the serial follows the scheme (16 BCD digits after the city).
    pub fn sequence(&self) -> Result<u64, IssueError> {
        let invalid = || IssueError::InvalidSerial { serial: self.to_string() };
        if !is_bcd(&self.0) {
            return Err(invalid());
        }
        Ok(self.0[2..].iter().fold(0u64, |n, b| n * 100 + u64::from(b >> 4) * 10 + u64::from(b & 0x0F)))
    }

    /// The last 8 bytes, which diversify the card keys.
    pub fn asn8(&self) -> [u8; 8] {
        let mut asn8 = [0u8; 8];
        asn8.copy_from_slice(&self.0[2..]);
        asn8
    }

    /// The printed card number: the serial in hex without its first digit (19 digits).
    pub fn card_number(&self) -> String {
        let mut text = self.to_string();
        text.split_off(1)
    }
}

impl fmt::Display for Serial {
    /// 20 upper-case hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}

fn is_bcd(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| b >> 4 <= 9 && b & 0x0F <= 9)
}

/// Hands out the serials of one issuer in order, each once.
///
/// Deterministic: the n-th serial is sequence number n. The allocator's whole state is
/// [`next_sequence`](Self::next_sequence); the caller persists it with the card it issued (in
/// the same transaction) and [`resume`](Self::resume)s from it, so that a restart never hands a
/// serial out again. Two allocators of one issuer must not run at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialAllocator {
    city_code: u16,
    next_sequence: u64,
}

impl SerialAllocator {
    /// A new issuer's allocator: its first serial is sequence number 1.
    pub fn new(city_code: u16) -> Result<Self, IssueError> {
        Self::resume(city_code, 1)
    }

    /// An allocator that hands out `next_sequence` next (as saved from
    /// [`next_sequence`](Self::next_sequence)).
    pub fn resume(city_code: u16, next_sequence: u64) -> Result<Self, IssueError> {
        if !is_bcd(&city_code.to_be_bytes()) {
            return Err(IssueError::InvalidCityCode { city_code });
        }
        if next_sequence == 0 {
            return Err(IssueError::SequenceZero);
        }
        Ok(SerialAllocator { city_code, next_sequence })
    }

    /// The sequence number the next serial gets; past [`SEQUENCE_MAX`] when all are spent.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// The next serial; never the same one twice.
    pub fn allocate(&mut self) -> Result<Serial, IssueError> {
        let serial = Serial::from_parts(self.city_code, self.next_sequence)?;
        self.next_sequence += 1;
        assert_eq!(serial.sequence(), Ok(self.next_sequence - 1), "a serial reads back as its sequence number");
        Ok(serial)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn serial_is_city_code_then_sixteen_digit_sequence() {
        let serial = Serial::from_parts(0x1000, 123_456).unwrap();
        assert_eq!(serial.0, [0x10, 0x00, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56]);
        assert_eq!(serial.to_string(), "10000000000000123456");
        assert_eq!(serial.card_number(), "0000000000000123456");
        assert_eq!(serial.asn8(), [0, 0, 0, 0, 0, 0x12, 0x34, 0x56]);
        assert_eq!(serial.city_code(), 0x1000);
        assert_eq!(serial.sequence(), Ok(123_456));
        let last = Serial::from_parts(0x2900, SEQUENCE_MAX).unwrap();
        assert_eq!(last.to_string(), "29009999999999999999");
    }

    #[test]
    fn allocator_counts_from_one_and_resumes_where_it_stopped() {
        let mut serials = SerialAllocator::new(0x1000).unwrap();
        let first: Vec<Serial> = (0..3).map(|_| serials.allocate().unwrap()).collect();
        assert_eq!(first[0].to_string(), "10000000000000000001");
        assert_eq!(first[2].to_string(), "10000000000000000003");
        let mut resumed = SerialAllocator::resume(0x1000, serials.next_sequence()).unwrap();
        assert_eq!(resumed.allocate().unwrap().to_string(), "10000000000000000004");
    }

    #[test]
    fn allocator_never_hands_out_a_serial_twice() {
        let mut serials = SerialAllocator::resume(0x5840, 9_999).unwrap();
        let mut seen = BTreeSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(serials.allocate().unwrap()));
        }
        // Across digit carries, and unique against another city's allocator too.
        let mut other = SerialAllocator::resume(0x5810, 9_999).unwrap();
        assert!(!seen.contains(&other.allocate().unwrap()));
    }

    #[test]
    fn allocator_stops_when_every_serial_is_spent() {
        let mut serials = SerialAllocator::resume(0x1000, SEQUENCE_MAX).unwrap();
        assert_eq!(serials.allocate().unwrap().to_string(), "10009999999999999999");
        assert_eq!(serials.allocate(), Err(IssueError::SerialsExhausted { city_code: 0x1000 }));
        assert_eq!(serials.allocate(), Err(IssueError::SerialsExhausted { city_code: 0x1000 }));
    }

    #[test]
    fn city_codes_and_serials_outside_the_scheme_are_refused() {
        assert_eq!(SerialAllocator::new(0x10A0), Err(IssueError::InvalidCityCode { city_code: 0x10A0 }));
        assert_eq!(SerialAllocator::resume(0x1000, 0), Err(IssueError::SequenceZero));
        let foreign = Serial([0x10, 0, 0, 0, 0, 0, 0, 0, 0x99, 0x9F]);
        assert!(matches!(foreign.sequence(), Err(IssueError::InvalidSerial { .. })));
        assert_eq!(foreign.card_number(), "000000000000000999F");
    }
}
