//! Command APDUs: parsing on the card side, building on the terminal side, and the answers of
//! INITIALIZE FOR LOAD / PURCHASE.

use alloc::vec::Vec;

use crate::{Reader, StatusWord, Truncated};

/// PPSE name selected by `00 A4 04 00 0E "2PAY.SYS.DDF01" 00`.
pub const PPSE: &[u8] = b"2PAY.SYS.DDF01";
/// The T-Union e-purse ADF.
pub const AID_TUNION: [u8; 8] = [0xA0, 0x00, 0x00, 0x06, 0x32, 0x01, 0x01, 0x05];
/// The label the PPSE gives the T-Union ADF.
pub const LABEL_TUNION: &[u8] = b"MOT_T_EP";
/// FID under which legacy terminals select the e-purse application (Beijing, Shenzhen layouts).
pub const FID_ADF: u16 = 0x1001;
/// FID of the master file.
pub const FID_MF: u16 = 0x3F00;

/// SFI of the issuer data file (30 bytes, binary).
pub const SFI_ISSUER: u8 = 0x15;
/// SFI of the holder file (55 bytes, binary).
pub const SFI_HOLDER: u8 = 0x16;
/// SFI of the management file (60 bytes, binary).
pub const SFI_MANAGEMENT: u8 = 0x17;
/// SFI of the transaction log (cyclic, 10 × 23).
pub const SFI_LOG: u8 = 0x18;
/// SFI of the composite-purchase transit data (linear, n × 128).
pub const SFI_TRANSIT: u8 = 0x1A;
/// SFI of the trip log (cyclic, 30 × 48).
pub const SFI_TRIP_LOG: u8 = 0x1E;

/// Key index the card supports for load and purchase (profile choice: one key per purpose).
pub const KEY_INDEX: u8 = 0x01;

/// EF18 transaction types.
pub mod transaction_type {
    /// Electronic purse load.
    pub const EP_LOAD: u8 = 0x02;
    /// Electronic purse purchase.
    pub const EP_PURCHASE: u8 = 0x06;
    /// Composite (CAPP) purchase.
    pub const CAPP_PURCHASE: u8 = 0x09;
}

/// A command APDU the card cannot parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApduError {
    /// Shorter than a header, Lc disagreeing with the length, or an extended length.
    WrongLength,
}

impl From<ApduError> for StatusWord {
    fn from(e: ApduError) -> Self {
        match e {
            ApduError::WrongLength => StatusWord::WRONG_LENGTH,
        }
    }
}

/// A parsed short command APDU (ISO 7816-4 cases 1 to 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command<'a> {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (empty for cases 1 and 2).
    pub data: &'a [u8],
    /// Expected response length; `Le = 00` means 256.
    pub le: Option<u16>,
}

impl<'a> Command<'a> {
    /// Parses a short APDU. Extended lengths are not part of the profile.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ApduError> {
        let mut r = Reader::new(bytes);
        let [cla, ins, p1, p2] = r.array().map_err(|Truncated| ApduError::WrongLength)?;
        let body = r.rest();
        let short_le = |b: u8| if b == 0 { 256 } else { u16::from(b) };
        let (data, le) = match body {
            [] => (&body[..0], None),
            [le] => (&body[..0], Some(short_le(*le))),
            [0, ..] => return Err(ApduError::WrongLength),
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                match rest.len() {
                    n if n == lc => (rest, None),
                    n if n == lc + 1 => (&rest[..lc], Some(short_le(rest[lc]))),
                    _ => return Err(ApduError::WrongLength),
                }
            }
        };
        Ok(Command { cla, ins, p1, p2, data, le })
    }
}

fn apdu(header: [u8; 4], data: &[u8], le: Option<u8>) -> Vec<u8> {
    debug_assert!(data.len() <= 255);
    let mut v = Vec::with_capacity(6 + data.len());
    v.extend_from_slice(&header);
    if !data.is_empty() {
        v.push(data.len() as u8);
        v.extend_from_slice(data);
    }
    v.extend(le);
    v
}

/// The profile's name of a command APDU, for display and messages (`?` for others).
pub fn command_name(apdu: &[u8]) -> &'static str {
    match apdu {
        [0x00, 0xA4, ..] => "SELECT",
        [0x00, 0xB0, ..] => "READ BINARY",
        [0x00, 0xB2, ..] => "READ RECORD",
        [0x00, 0x84, ..] => "GET CHALLENGE",
        [0x80, 0x5C, ..] => "GET BALANCE",
        [0x80, 0x50, 0x00, ..] => "INITIALIZE FOR LOAD",
        [0x80, 0x50, 0x01, ..] => "INITIALIZE FOR PURCHASE",
        [0x80, 0x50, 0x03, ..] => "INITIALIZE FOR CAPP PURCHASE",
        [0x80, 0x52, ..] => "CREDIT FOR LOAD",
        [0x80, 0xDC, ..] => "UPDATE CAPP DATA CACHE",
        [0x80, 0x54, ..] => "DEBIT FOR PURCHASE",
        [0x80, 0x5A, ..] => "GET TRANSACTION PROVE",
        [0x84, 0x1E, ..] => "APPLICATION BLOCK",
        [0x84, 0x18, ..] => "APPLICATION UNBLOCK",
        _ => "?",
    }
}

/// SELECT by name: `00 A4 04 00 Lc <name> 00`.
pub fn select_by_name(name: &[u8]) -> Vec<u8> {
    apdu([0x00, 0xA4, 0x04, 0x00], name, Some(0))
}

/// SELECT by FID: `00 A4 00 00 02 <FID>`.
pub fn select_by_fid(fid: u16) -> Vec<u8> {
    apdu([0x00, 0xA4, 0x00, 0x00], &fid.to_be_bytes(), None)
}

/// READ BINARY by SFI: `00 B0 (80|SFI) <offset> <Le>`.
pub fn read_binary(sfi: u8, offset: u8, le: u8) -> Vec<u8> {
    apdu([0x00, 0xB0, 0x80 | sfi, offset], &[], Some(le))
}

/// READ RECORD: `00 B2 <record> (SFI<<3 | 4) <Le>`.
pub fn read_record(sfi: u8, record: u8, le: u8) -> Vec<u8> {
    apdu([0x00, 0xB2, record, (sfi << 3) | 4], &[], Some(le))
}

/// GET BALANCE: `80 5C 00 02 04`.
pub fn get_balance() -> Vec<u8> {
    apdu([0x80, 0x5C, 0x00, 0x02], &[], Some(4))
}

/// GET BALANCE of the balance limit: `80 5C 02 02 04` (profile choice).
pub fn get_balance_limit() -> Vec<u8> {
    apdu([0x80, 0x5C, 0x02, 0x02], &[], Some(4))
}

/// INITIALIZE FOR LOAD: `80 50 00 02 0B` key index ‖ amount ‖ terminal ID, Le `10`.
pub fn initialize_for_load(amount_fen: u32, terminal_id: [u8; 6]) -> Vec<u8> {
    apdu([0x80, 0x50, 0x00, 0x02], &init_data(amount_fen, terminal_id), Some(0x10))
}

/// INITIALIZE FOR PURCHASE (`80 50 01 02 0B`) or, with `capp`, FOR CAPP PURCHASE (`80 50 03 02 0B`).
pub fn initialize_for_purchase(capp: bool, amount_fen: u32, terminal_id: [u8; 6]) -> Vec<u8> {
    let p1 = if capp { 0x03 } else { 0x01 };
    apdu([0x80, 0x50, p1, 0x02], &init_data(amount_fen, terminal_id), Some(0x0F))
}

fn init_data(amount_fen: u32, terminal_id: [u8; 6]) -> [u8; 11] {
    let mut d = [0u8; 11];
    d[0] = KEY_INDEX;
    d[1..5].copy_from_slice(&amount_fen.to_be_bytes());
    d[5..].copy_from_slice(&terminal_id);
    d
}

/// CREDIT FOR LOAD: `80 52 00 00 0B` date ‖ time ‖ MAC2, Le `04`.
pub fn credit_for_load(date: [u8; 4], time: [u8; 3], mac2: [u8; 4]) -> Vec<u8> {
    let mut d = [0u8; 11];
    d[..4].copy_from_slice(&date);
    d[4..7].copy_from_slice(&time);
    d[7..].copy_from_slice(&mac2);
    apdu([0x80, 0x52, 0x00, 0x00], &d, Some(4))
}

/// UPDATE CAPP DATA CACHE: `80 DC <record> (SFI<<3) Lc <record data>`; record 0 appends to a
/// cyclic file.
pub fn update_capp_data_cache(sfi: u8, record: u8, data: &[u8]) -> Vec<u8> {
    apdu([0x80, 0xDC, record, sfi << 3], data, None)
}

/// DEBIT FOR PURCHASE / CAPP PURCHASE: `80 54 01 00 0F` terminal transaction number ‖ date ‖
/// time ‖ MAC1, Le `08`.
pub fn debit_for_purchase(terminal_transaction_number: u32, date: [u8; 4], time: [u8; 3], mac1: [u8; 4]) -> Vec<u8> {
    let mut d = [0u8; 15];
    d[..4].copy_from_slice(&terminal_transaction_number.to_be_bytes());
    d[4..8].copy_from_slice(&date);
    d[8..11].copy_from_slice(&time);
    d[11..].copy_from_slice(&mac1);
    apdu([0x80, 0x54, 0x01, 0x00], &d, Some(8))
}

/// GET TRANSACTION PROVE: `80 5A 00 <type> 02 <counter>`, Le `08`.
pub fn get_transaction_prove(transaction_type: u8, counter: u16) -> Vec<u8> {
    apdu([0x80, 0x5A, 0x00, transaction_type], &counter.to_be_bytes(), Some(8))
}

/// GET CHALLENGE: `00 84 00 00 04`; the card answers 4 random bytes that the next command's
/// secure-messaging MAC must use.
pub fn get_challenge() -> Vec<u8> {
    apdu([0x00, 0x84, 0x00, 0x00], &[], Some(4))
}

/// The header (CLA INS P1 P2 Lc) of APPLICATION BLOCK: P2 `00` blocks until an APPLICATION
/// UNBLOCK, `01` for good. The secure-messaging MAC is computed over it.
pub const fn application_block_header(permanently: bool) -> [u8; 5] {
    [0x84, 0x1E, 0x00, if permanently { 0x01 } else { 0x00 }, 0x04]
}

/// The header (CLA INS P1 P2 Lc) of APPLICATION UNBLOCK, which the MAC covers.
pub const APPLICATION_UNBLOCK_HEADER: [u8; 5] = [0x84, 0x18, 0x00, 0x00, 0x04];

/// APPLICATION BLOCK: `84 1E 00 <P2> 04 <MAC>`, the MAC of [`application_block_header`] under the
/// card's maintenance key with the last GET CHALLENGE (see `docs/card-profile.md`).
pub fn application_block(permanently: bool, mac: [u8; 4]) -> Vec<u8> {
    let h = application_block_header(permanently);
    apdu([h[0], h[1], h[2], h[3]], &mac, None)
}

/// APPLICATION UNBLOCK: `84 18 00 00 04 <MAC>`, the MAC of [`APPLICATION_UNBLOCK_HEADER`].
pub fn application_unblock(mac: [u8; 4]) -> Vec<u8> {
    let h = APPLICATION_UNBLOCK_HEADER;
    apdu([h[0], h[1], h[2], h[3]], &mac, None)
}

/// The 16-byte answer to INITIALIZE FOR LOAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadInit {
    /// Balance before the load, in fen (negative while the overdraft is in use).
    pub balance_fen: i32,
    /// Online counter before this load.
    pub online_counter: u16,
    /// Version of the load key.
    pub key_version: u8,
    /// Algorithm ID (`00` DES, `04` SM4).
    pub algorithm_id: u8,
    /// Card random for the session key.
    pub card_random: [u8; 4],
    /// MAC1 over balance ‖ amount ‖ type ‖ terminal.
    pub mac1: [u8; 4],
}

impl LoadInit {
    /// The 16 response bytes.
    pub fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&self.balance_fen.to_be_bytes());
        b[4..6].copy_from_slice(&self.online_counter.to_be_bytes());
        b[6] = self.key_version;
        b[7] = self.algorithm_id;
        b[8..12].copy_from_slice(&self.card_random);
        b[12..].copy_from_slice(&self.mac1);
        b
    }

    /// Parses the 16 response bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, Truncated> {
        let mut r = Reader::new(bytes);
        let v = LoadInit {
            balance_fen: r.u32()? as i32,
            online_counter: r.u16()?,
            key_version: r.u8()?,
            algorithm_id: r.u8()?,
            card_random: r.array()?,
            mac1: r.array()?,
        };
        exact(r, v)
    }
}

/// The 15-byte answer to INITIALIZE FOR PURCHASE and FOR CAPP PURCHASE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PurchaseInit {
    /// Balance before the purchase, in fen (negative while the overdraft is in use).
    pub balance_fen: i32,
    /// Offline counter before this purchase.
    pub offline_counter: u16,
    /// Overdraft limit, in fen (3 bytes on the wire).
    pub overdraft_limit_fen: u32,
    /// Version of the purchase key.
    pub key_version: u8,
    /// Algorithm ID (`00` DES, `04` SM4).
    pub algorithm_id: u8,
    /// Card random for the session key.
    pub card_random: [u8; 4],
}

impl PurchaseInit {
    /// The 15 response bytes.
    pub fn encode(&self) -> [u8; 15] {
        let mut b = [0u8; 15];
        b[..4].copy_from_slice(&self.balance_fen.to_be_bytes());
        b[4..6].copy_from_slice(&self.offline_counter.to_be_bytes());
        b[6..9].copy_from_slice(&self.overdraft_limit_fen.to_be_bytes()[1..]);
        b[9] = self.key_version;
        b[10] = self.algorithm_id;
        b[11..].copy_from_slice(&self.card_random);
        b
    }

    /// Parses the 15 response bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, Truncated> {
        let mut r = Reader::new(bytes);
        let v = PurchaseInit {
            balance_fen: r.u32()? as i32,
            offline_counter: r.u16()?,
            overdraft_limit_fen: r.u24()?,
            key_version: r.u8()?,
            algorithm_id: r.u8()?,
            card_random: r.array()?,
        };
        exact(r, v)
    }
}

fn exact<T>(r: Reader<'_>, v: T) -> Result<T, Truncated> {
    if r.rest().is_empty() {
        Ok(v)
    } else {
        Err(Truncated)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn commands_are_named_by_their_header() {
        assert_eq!(super::command_name(&super::credit_for_load([0; 4], [0; 3], [0; 4])), "CREDIT FOR LOAD");
        assert_eq!(super::command_name(&super::initialize_for_load(1, [0; 6])), "INITIALIZE FOR LOAD");
        assert_eq!(super::command_name(&super::application_block(true, [0; 4])), "APPLICATION BLOCK");
        assert_eq!(super::command_name(&super::get_challenge()), "GET CHALLENGE");
        assert_eq!(super::command_name(&[0x80]), "?");
    }

    use super::*;

    #[test]
    fn parses_each_iso_case() {
        let c = Command::parse(&[0x00, 0xA4, 0x00, 0x00]).unwrap();
        assert_eq!((c.data, c.le), (&[][..], None));
        let c = Command::parse(&[0x00, 0xB0, 0x95, 0x00, 0x00]).unwrap();
        assert_eq!(c.le, Some(256));
        let c = Command::parse(&[0x00, 0xA4, 0x00, 0x00, 0x02, 0x10, 0x01]).unwrap();
        assert_eq!((c.data, c.le), (&[0x10, 0x01][..], None));
        let c = Command::parse(&[0x80, 0x5A, 0x00, 0x09, 0x02, 0x00, 0x01, 0x08]).unwrap();
        assert_eq!((c.data, c.le), (&[0x00, 0x01][..], Some(8)));
    }

    #[test]
    fn rejects_bad_lengths() {
        for bad in [&[0x00, 0xA4, 0x00][..], &[0x00, 0xA4, 0x00, 0x00, 0x03, 0x01], &[0, 0, 0, 0, 0, 1, 2]] {
            assert_eq!(Command::parse(bad), Err(ApduError::WrongLength));
        }
    }

    #[test]
    fn builders_match_the_profile_bytes() {
        assert_eq!(read_binary(SFI_ISSUER, 0, 0), [0x00, 0xB0, 0x95, 0x00, 0x00]);
        assert_eq!(read_record(SFI_LOG, 1, 0x17), [0x00, 0xB2, 0x01, 0xC4, 0x17]);
        assert_eq!(update_capp_data_cache(SFI_TRANSIT, 2, &[0; 128])[..5], [0x80, 0xDC, 0x02, 0xD0, 0x80]);
        assert_eq!(update_capp_data_cache(SFI_TRIP_LOG, 0, &[0; 48])[..5], [0x80, 0xDC, 0x00, 0xF0, 0x30]);
        assert_eq!(get_balance(), [0x80, 0x5C, 0x00, 0x02, 0x04]);
        assert_eq!(initialize_for_purchase(true, 1, [0; 6])[..5], [0x80, 0x50, 0x03, 0x02, 0x0B]);
        assert_eq!(initialize_for_purchase(false, 1, [0; 6])[..5], [0x80, 0x50, 0x01, 0x02, 0x0B]);
        assert_eq!(initialize_for_load(1, [0; 6])[..5], [0x80, 0x50, 0x00, 0x02, 0x0B]);
        assert_eq!(debit_for_purchase(1, [0; 4], [0; 3], [0; 4])[..5], [0x80, 0x54, 0x01, 0x00, 0x0F]);
        assert_eq!(credit_for_load([0; 4], [0; 3], [0; 4])[..5], [0x80, 0x52, 0x00, 0x00, 0x0B]);
        let mut ppse = alloc::vec![0x00, 0xA4, 0x04, 0x00, 0x0E];
        ppse.extend_from_slice(b"2PAY.SYS.DDF01");
        ppse.push(0);
        assert_eq!(select_by_name(PPSE), ppse);
    }

    #[test]
    fn maintenance_builders_match_the_profile_bytes() {
        assert_eq!(get_challenge(), [0x00, 0x84, 0x00, 0x00, 0x04]);
        assert_eq!(application_block(false, [1, 2, 3, 4]), [0x84, 0x1E, 0x00, 0x00, 0x04, 1, 2, 3, 4]);
        assert_eq!(application_block(true, [1, 2, 3, 4]), [0x84, 0x1E, 0x00, 0x01, 0x04, 1, 2, 3, 4]);
        assert_eq!(application_unblock([5, 6, 7, 8]), [0x84, 0x18, 0x00, 0x00, 0x04, 5, 6, 7, 8]);
        assert_eq!(application_block(true, [0; 4])[..5], application_block_header(true));
        assert_eq!(application_unblock([0; 4])[..5], APPLICATION_UNBLOCK_HEADER);
    }

    #[test]
    fn init_answers_round_trip_and_reject_wrong_sizes() {
        let p = PurchaseInit {
            balance_fen: -150,
            offline_counter: 7,
            overdraft_limit_fen: 500,
            key_version: 1,
            algorithm_id: 0,
            card_random: [1, 2, 3, 4],
        };
        let bytes = p.encode();
        assert_eq!(&bytes[..4], &[0xFF, 0xFF, 0xFF, 0x6A]);
        assert_eq!(&bytes[6..9], &[0x00, 0x01, 0xF4]);
        assert_eq!(PurchaseInit::decode(&bytes), Ok(p));
        assert!(PurchaseInit::decode(&bytes[..14]).is_err());
        let l = LoadInit {
            balance_fen: 1,
            online_counter: 2,
            key_version: 3,
            algorithm_id: 4,
            card_random: [5; 4],
            mac1: [6; 4],
        };
        assert_eq!(LoadInit::decode(&l.encode()), Ok(l));
        let mut long = l.encode().to_vec();
        long.push(0);
        assert!(LoadInit::decode(&long).is_err());
    }
}
