//! PRELOGIN (MS-TDS 2.2.6.5) and LOGIN7 (MS-TDS 2.2.6.4) as the server sees them.

use super::wire::{DecodeError, DecodeResult, Reader, utf16_to_string};
use crate::server::EncryptionSetting;

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

/// What a connection's PRELOGIN agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Negotiated {
    /// Nothing is encrypted.
    Plain,
    /// Only LOGIN7 is encrypted (the client asked ENCRYPT_OFF of a server with a
    /// certificate): after it, TLS is dropped and the rest travels in clear.
    LoginOnly,
    /// Everything after the handshake is encrypted.
    Full,
    /// The server answers and closes: the two sides cannot agree.
    Refused(&'static str),
}

/// The server's answer to a client's ENCRYPTION option and what follows (MS-TDS 2.2.6.5's
/// table): `setting` is the server's side (certificate, "Force Encryption").
pub fn negotiate_encryption(setting: EncryptionSetting, client: u8) -> (u8, Negotiated) {
    // The high bit is the client-certificate flag that can ride on top of the level.
    let client = client & 0x0F;
    let demands = matches!(client, ENCRYPT_ON | ENCRYPT_REQ);
    match setting {
        EncryptionSetting::Disabled if demands => (
            ENCRYPT_NOT_SUP,
            Negotiated::Refused("client demands encryption, which this server cannot offer"),
        ),
        EncryptionSetting::Disabled => (ENCRYPT_NOT_SUP, Negotiated::Plain),
        EncryptionSetting::Forced if client == ENCRYPT_NOT_SUP => (
            ENCRYPT_REQ,
            Negotiated::Refused("client cannot encrypt and this server forces encryption"),
        ),
        EncryptionSetting::Forced => (ENCRYPT_ON, Negotiated::Full),
        EncryptionSetting::Supported => match client {
            ENCRYPT_NOT_SUP => (ENCRYPT_NOT_SUP, Negotiated::Plain),
            ENCRYPT_OFF => (ENCRYPT_OFF, Negotiated::LoginOnly),
            _ => (ENCRYPT_ON, Negotiated::Full),
        },
    }
}

/// The server's PRELOGIN answer: version, `encryption`, instance valid, no MARS.
pub fn prelogin_response(encryption: u8) -> Vec<u8> {
    let version: [u8; 6] = [15, 0, 0x07, 0xD0, 0, 0];
    let encryption = [encryption];
    let options: [(u8, &[u8]); 5] = [
        (OPT_VERSION, &version),
        (OPT_ENCRYPTION, &encryption),
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
    fn prelogin_response_carries_the_chosen_encryption() {
        for level in [ENCRYPT_OFF, ENCRYPT_ON, ENCRYPT_NOT_SUP, ENCRYPT_REQ] {
            assert_eq!(client_encryption(&prelogin_response(level)).unwrap(), level);
        }
    }

    #[test]
    fn a_server_with_a_certificate_gives_each_client_what_it_asks_for() {
        use EncryptionSetting::Supported;
        assert_eq!(
            negotiate_encryption(Supported, ENCRYPT_NOT_SUP),
            (ENCRYPT_NOT_SUP, Negotiated::Plain)
        );
        assert_eq!(
            negotiate_encryption(Supported, ENCRYPT_OFF),
            (ENCRYPT_OFF, Negotiated::LoginOnly)
        );
        assert_eq!(
            negotiate_encryption(Supported, ENCRYPT_ON),
            (ENCRYPT_ON, Negotiated::Full)
        );
        assert_eq!(
            negotiate_encryption(Supported, ENCRYPT_REQ | 0x80),
            (ENCRYPT_ON, Negotiated::Full)
        );
    }

    #[test]
    fn forced_encryption_encrypts_everything_and_refuses_a_client_that_cannot() {
        use EncryptionSetting::Forced;
        assert_eq!(
            negotiate_encryption(Forced, ENCRYPT_OFF),
            (ENCRYPT_ON, Negotiated::Full)
        );
        let (answer, outcome) = negotiate_encryption(Forced, ENCRYPT_NOT_SUP);
        assert_eq!(answer, ENCRYPT_REQ);
        assert!(matches!(outcome, Negotiated::Refused(_)));
    }

    #[test]
    fn a_server_without_a_certificate_refuses_a_client_that_demands_encryption() {
        use EncryptionSetting::Disabled;
        assert_eq!(
            negotiate_encryption(Disabled, ENCRYPT_OFF),
            (ENCRYPT_NOT_SUP, Negotiated::Plain)
        );
        for demand in [ENCRYPT_ON, ENCRYPT_REQ] {
            let (answer, outcome) = negotiate_encryption(Disabled, demand);
            assert_eq!(answer, ENCRYPT_NOT_SUP);
            assert!(matches!(outcome, Negotiated::Refused(_)));
        }
    }

    #[test]
    fn packet_size_is_clamped_to_the_protocol_range() {
        assert_eq!(negotiate_packet_size(0), 4096);
        assert_eq!(negotiate_packet_size(100), 512);
        assert_eq!(negotiate_packet_size(8192), 8192);
        assert_eq!(negotiate_packet_size(65536), 32767);
    }
}
