//! PRELOGIN (MS-TDS 2.2.6.5) and LOGIN7 (MS-TDS 2.2.6.4) as the server sees them.

use super::wire::{DecodeError, DecodeResult, Reader, utf16_to_string};

/// PRELOGIN option tokens.
const OPT_VERSION: u8 = 0x00;
const OPT_ENCRYPTION: u8 = 0x01;
const OPT_INSTOPT: u8 = 0x02;
const OPT_THREADID: u8 = 0x03;
const OPT_MARS: u8 = 0x04;
const OPT_TERMINATOR: u8 = 0xFF;

/// ENCRYPTION option values.
pub const ENCRYPT_OFF: u8 = 0x00;
pub const ENCRYPT_ON: u8 = 0x01;
pub const ENCRYPT_NOT_SUP: u8 = 0x02;
pub const ENCRYPT_REQ: u8 = 0x03;

/// The ENCRYPTION option of a client's PRELOGIN (`ENCRYPT_OFF` if it sent none).
pub fn client_encryption(payload: &[u8]) -> DecodeResult<u8> {
    let mut r = Reader::new(payload);
    loop {
        let token = r.u8("PRELOGIN option token")?;
        if token == OPT_TERMINATOR {
            return Ok(ENCRYPT_OFF);
        }
        let offset = u16::from_be_bytes([r.u8("PRELOGIN offset")?, r.u8("PRELOGIN offset")?]);
        let length = u16::from_be_bytes([r.u8("PRELOGIN length")?, r.u8("PRELOGIN length")?]);
        if token == OPT_ENCRYPTION {
            if length < 1 || payload.len() <= offset as usize {
                return Err(DecodeError("PRELOGIN ENCRYPTION option is empty".into()));
            }
            return Ok(payload[offset as usize]);
        }
    }
}

/// Whether the client demands an encrypted channel (ON or REQ), which this server refuses.
pub fn demands_encryption(level: u8) -> bool {
    // The low bit carries ON/REQ; 0x80 is the client-certificate flag that can ride on top.
    matches!(level & 0x0F, ENCRYPT_ON | ENCRYPT_REQ)
}

/// The server's PRELOGIN answer: version, ENCRYPT_NOT_SUP, instance valid, no MARS.
pub fn prelogin_response() -> Vec<u8> {
    let version: [u8; 6] = [15, 0, 0x07, 0xD0, 0, 0];
    let options: [(u8, &[u8]); 5] = [
        (OPT_VERSION, &version),
        (OPT_ENCRYPTION, &[ENCRYPT_NOT_SUP]),
        (OPT_INSTOPT, &[0]),
        (OPT_THREADID, &[]),
        (OPT_MARS, &[0]),
    ];
    let mut offset = (options.len() * 5 + 1) as u16;
    let mut head = Vec::new();
    let mut data = Vec::new();
    for (token, value) in options {
        head.push(token);
        head.extend_from_slice(&offset.to_be_bytes());
        head.extend_from_slice(&(value.len() as u16).to_be_bytes());
        data.extend_from_slice(value);
        offset += value.len() as u16;
    }
    head.push(OPT_TERMINATOR);
    head.extend(data);
    head
}

/// The fields of LOGIN7 the simulator uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login7 {
    pub tds_version: u32,
    pub packet_size: u32,
    pub host_name: String,
    pub user: String,
    pub password: String,
    pub app_name: String,
    pub server_name: String,
    pub database: String,
    /// The client sent a FeatureExt block (OptionFlags3 fExtension), so the login response
    /// must carry a FEATUREEXTACK.
    pub feature_ext: bool,
}

/// OptionFlags3 (offset 27): fExtension.
const FLAGS3_EXTENSION: u8 = 0x10;

/// The fixed part of LOGIN7 up to and including cbSSPILong.
const LOGIN7_FIXED_LEN: usize = 94;

/// Decodes LOGIN7, undoing the password obfuscation (each byte XOR 0xA5, then nibbles
/// swapped back).
pub fn decode_login7(payload: &[u8]) -> DecodeResult<Login7> {
    if payload.len() < LOGIN7_FIXED_LEN {
        return Err(DecodeError(format!(
            "LOGIN7 of {} bytes is shorter than its {LOGIN7_FIXED_LEN}-byte fixed part",
            payload.len()
        )));
    }
    let mut r = Reader::new(payload);
    let _length = r.u32("LOGIN7 Length")?;
    let tds_version = r.u32("LOGIN7 TDSVersion")?;
    let packet_size = r.u32("LOGIN7 PacketSize")?;
    let field = |at: usize, what: &str| -> DecodeResult<Vec<u8>> {
        let mut r = Reader::new(payload);
        r.skip(at, what)?;
        let ib = r.u16(what)? as usize;
        let cch = r.u16(what)? as usize;
        let mut r = Reader::new(payload);
        r.skip(ib, what)?;
        Ok(r.bytes(cch * 2, what)?.to_vec())
    };
    let text = |at: usize, what: &str| -> DecodeResult<String> {
        utf16_to_string(&field(at, what)?, what)
    };
    let mut password = field(44, "LOGIN7 Password")?;
    for b in &mut password {
        let x = *b ^ 0xA5;
        *b = x.rotate_left(4);
    }
    Ok(Login7 {
        tds_version,
        packet_size,
        host_name: text(36, "LOGIN7 HostName")?,
        user: text(40, "LOGIN7 UserName")?,
        password: utf16_to_string(&password, "LOGIN7 Password")?,
        app_name: text(48, "LOGIN7 AppName")?,
        server_name: text(52, "LOGIN7 ServerName")?,
        database: text(68, "LOGIN7 Database")?,
        feature_ext: payload[27] & FLAGS3_EXTENSION != 0,
    })
}

/// The packet size the server agrees to: the client's request within MS-TDS's 512..=32767,
/// 4096 when the client leaves it to the server (0).
pub fn negotiate_packet_size(requested: u32) -> usize {
    match requested {
        0 => super::packet::DEFAULT_PACKET_SIZE,
        n => n.clamp(512, 32767) as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prelogin_response_says_encryption_not_supported() {
        assert_eq!(
            client_encryption(&prelogin_response()).unwrap(),
            ENCRYPT_NOT_SUP
        );
    }

    #[test]
    fn encryption_on_and_required_are_demands_and_off_and_not_sup_are_not() {
        assert!(demands_encryption(ENCRYPT_ON));
        assert!(demands_encryption(ENCRYPT_REQ));
        assert!(!demands_encryption(ENCRYPT_OFF));
        assert!(!demands_encryption(ENCRYPT_NOT_SUP));
    }

    #[test]
    fn packet_size_is_clamped_to_the_protocol_range() {
        assert_eq!(negotiate_packet_size(0), 4096);
        assert_eq!(negotiate_packet_size(100), 512);
        assert_eq!(negotiate_packet_size(8192), 8192);
        assert_eq!(negotiate_packet_size(65536), 32767);
    }
}
