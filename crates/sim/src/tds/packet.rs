//! TDS packet framing (MS-TDS 2.2.3): an 8-byte header (type, status, big-endian length, SPID,
//! packet id, window) before each packet's payload; a message is the payloads of consecutive
//! packets up to the one whose status carries END_OF_MESSAGE.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes in a packet header.
pub const HEADER_LEN: usize = 8;

/// The packet size before LOGIN7 negotiates one, and the default a client gets.
pub const DEFAULT_PACKET_SIZE: usize = 4096;

/// The largest message the front end accepts; a client sending more is cut off rather than
/// allowed to exhaust memory.
const MAX_MESSAGE_LEN: usize = 64 * 1024 * 1024;

/// Packet types (MS-TDS 2.2.3.1.1).
pub mod packet_type {
    pub const SQL_BATCH: u8 = 0x01;
    pub const RPC: u8 = 0x03;
    pub const TABULAR_RESULT: u8 = 0x04;
    pub const ATTENTION: u8 = 0x06;
    pub const TRANSACTION_MANAGER: u8 = 0x0E;
    pub const LOGIN7: u8 = 0x10;
    pub const PRELOGIN: u8 = 0x12;
}

/// Packet status bits (MS-TDS 2.2.3.1.2).
const STATUS_EOM: u8 = 0x01;
/// The client abandoned the message: the server discards it.
const STATUS_IGNORE: u8 = 0x02;

/// One complete client message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub ty: u8,
    pub payload: Vec<u8>,
}

/// Reads the next complete message. `Ok(None)` is a clean end of stream between messages.
pub async fn read_message<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Option<Message>> {
    let mut payload = Vec::new();
    let mut first = true;
    loop {
        let mut header = [0u8; HEADER_LEN];
        if first {
            // An EOF before the first header byte is the client hanging up between requests.
            match reader.read(&mut header[..1]).await? {
                0 => return Ok(None),
                _ => reader.read_exact(&mut header[1..]).await?,
            };
        } else {
            reader.read_exact(&mut header).await?;
        }
        let ty = header[0];
        let status = header[1];
        let length = u16::from_be_bytes([header[2], header[3]]) as usize;
        if length < HEADER_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("TDS packet length {length} is shorter than its header"),
            ));
        }
        let start = payload.len();
        if start + length - HEADER_LEN > MAX_MESSAGE_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TDS message larger than 64 MiB",
            ));
        }
        payload.resize(start + length - HEADER_LEN, 0);
        reader.read_exact(&mut payload[start..]).await?;
        first = false;
        if status & STATUS_EOM != 0 {
            if status & STATUS_IGNORE != 0 {
                payload.clear();
                first = true;
                continue;
            }
            return Ok(Some(Message { ty, payload }));
        }
    }
}

/// Splits one server message into packets of at most `packet_size` bytes; only the last
/// carries END_OF_MESSAGE. `packet_id` is the connection's running packet counter.
pub fn frame(ty: u8, payload: &[u8], packet_size: usize, spid: u16, packet_id: &mut u8) -> Vec<u8> {
    let chunk = packet_size.max(HEADER_LEN + 1) - HEADER_LEN;
    let mut out = Vec::with_capacity(payload.len() + HEADER_LEN * (payload.len() / chunk + 1));
    let mut chunks = payload.chunks(chunk).peekable();
    // An empty message (none is sent today) still needs one packet with EOM.
    if chunks.peek().is_none() {
        push_packet(&mut out, ty, STATUS_EOM, &[], spid, packet_id);
    }
    while let Some(part) = chunks.next() {
        let status = if chunks.peek().is_none() {
            STATUS_EOM
        } else {
            0
        };
        push_packet(&mut out, ty, status, part, spid, packet_id);
    }
    out
}

fn push_packet(out: &mut Vec<u8>, ty: u8, status: u8, part: &[u8], spid: u16, packet_id: &mut u8) {
    let len = (part.len() + HEADER_LEN) as u16;
    out.push(ty);
    out.push(status);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&spid.to_be_bytes());
    out.push(*packet_id);
    out.push(0);
    out.extend_from_slice(part);
    *packet_id = packet_id.wrapping_add(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frame_splits_at_packet_size_with_eom_only_on_last() {
        let payload: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut id = 1;
        let bytes = frame(packet_type::TABULAR_RESULT, &payload, 4096, 51, &mut id);
        // 4088 payload bytes per packet: 3 packets.
        assert_eq!(id, 4);
        assert_eq!(bytes[1], 0);
        let second = 4096;
        assert_eq!(bytes[second + 1], 0);
        let third = 2 * 4096;
        assert_eq!(bytes[third + 1], STATUS_EOM);
        let mut reader = &bytes[..];
        let msg = read_message(&mut reader).await.unwrap().unwrap();
        assert_eq!(msg.payload, payload);
        assert_eq!(msg.ty, packet_type::TABULAR_RESULT);
    }

    #[tokio::test]
    async fn read_message_discards_a_message_the_client_marked_ignore() {
        let mut bytes = vec![1, STATUS_EOM | STATUS_IGNORE, 0, 10, 0, 0, 1, 0, 0xAA, 0xBB];
        let mut id = 1;
        bytes.extend(frame(1, b"ok", 4096, 0, &mut id));
        let mut reader = &bytes[..];
        let msg = read_message(&mut reader).await.unwrap().unwrap();
        assert_eq!(msg.payload, b"ok");
    }

    #[tokio::test]
    async fn read_message_reports_clean_eof_as_none() {
        let mut reader: &[u8] = &[];
        assert_eq!(read_message(&mut reader).await.unwrap(), None);
    }
}
