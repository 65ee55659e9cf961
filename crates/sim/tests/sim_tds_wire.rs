//! Wire-level behaviour checked with hand-built packets rather than a client library: the
//! negotiated packet size, packet headers, ATTENTION while idle, the IGNORE status bit, and
//! clients that break the protocol, and transaction-manager requests the backend refuses.
//! The backend is the test double of tests/support.

mod support;

use std::time::Duration;

use support::tds::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const EOM: u8 = 0x01;
const IGNORE: u8 = 0x02;

fn packet(ty: u8, status: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![ty, status];
    p.extend_from_slice(&((payload.len() + 8) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 1, 0]);
    p.extend_from_slice(payload);
    p
}

/// PRELOGIN with VERSION and ENCRYPTION only.
fn prelogin(encryption: u8) -> Vec<u8> {
    let mut p = vec![0x00, 0, 11, 0, 6, 0x01, 0, 17, 0, 1, 0xFF];
    p.extend_from_slice(&[1, 0, 0, 0, 0, 0, encryption]);
    packet(0x12, EOM, &p)
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// LOGIN7 as MS-TDS 2.2.6.4 lays it out, with the password obfuscated.
fn login7(user: &str, password: &str, packet_size: u32) -> Vec<u8> {
    let fields: [Vec<u8>; 9] = [
        utf16("client.example.com"),
        utf16(user),
        utf16(password)
            .into_iter()
            .map(|b| b.rotate_left(4) ^ 0xA5)
            .collect(),
        utf16("wire test"),
        utf16("sim"),
        Vec::new(), // extension
        Vec::new(), // client interface
        Vec::new(), // language
        utf16("mgc"),
    ];
    let mut fixed = Vec::new();
    fixed.extend_from_slice(&0u32.to_le_bytes()); // length, patched below
    fixed.extend_from_slice(&0x7400_0004u32.to_le_bytes());
    fixed.extend_from_slice(&packet_size.to_le_bytes());
    fixed.extend_from_slice(&[0; 12]); // prog version, pid, connection id
    fixed.extend_from_slice(&[0xE0, 0x03, 0, 0]); // option flags
    fixed.extend_from_slice(&[0; 8]); // timezone, lcid
    let mut data = Vec::new();
    let mut offset = 94usize;
    for f in &fields {
        fixed.extend_from_slice(&(offset as u16).to_le_bytes());
        fixed.extend_from_slice(&((f.len() / 2) as u16).to_le_bytes());
        data.extend_from_slice(f);
        offset += f.len();
    }
    fixed.extend_from_slice(&[0; 6]); // client id
    for _ in 0..3 {
        // SSPI, attach db file, change password: empty
        fixed.extend_from_slice(&(offset as u16).to_le_bytes());
        fixed.extend_from_slice(&0u16.to_le_bytes());
    }
    fixed.extend_from_slice(&0u32.to_le_bytes()); // cbSSPILong
    assert_eq!(fixed.len(), 94);
    fixed.extend(data);
    let len = fixed.len() as u32;
    fixed[..4].copy_from_slice(&len.to_le_bytes());
    packet(0x10, EOM, &fixed)
}

fn batch(sql: &str) -> Vec<u8> {
    // ALL_HEADERS with the transaction descriptor header, as TDS 7.2+ requires.
    let mut p = Vec::new();
    p.extend_from_slice(&22u32.to_le_bytes());
    p.extend_from_slice(&18u32.to_le_bytes());
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&[0; 8]);
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend(utf16(sql));
    p
}

/// Reads packets up to END_OF_MESSAGE; returns each packet's (status, length, spid) and the
/// joined payload.
async fn read_response(s: &mut TcpStream) -> (Vec<(u8, usize, u16)>, Vec<u8>) {
    let read = async {
        let mut packets = Vec::new();
        let mut payload = Vec::new();
        loop {
            let mut h = [0u8; 8];
            s.read_exact(&mut h).await.unwrap();
            let len = u16::from_be_bytes([h[2], h[3]]) as usize;
            let spid = u16::from_be_bytes([h[4], h[5]]);
            let mut body = vec![0u8; len - 8];
            s.read_exact(&mut body).await.unwrap();
            assert_eq!(h[0], 0x04, "server packets are TABULAR_RESULT");
            packets.push((h[1], len, spid));
            payload.extend(body);
            if h[1] & EOM != 0 {
                return (packets, payload);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("response timed out")
}

async fn logged_in(addr: std::net::SocketAddr, packet_size: u32) -> (TcpStream, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&prelogin(0x02)).await.unwrap();
    read_response(&mut s).await;
    s.write_all(&login7(USER, PASSWORD, packet_size))
        .await
        .unwrap();
    let (_, login_reply) = read_response(&mut s).await;
    (s, login_reply)
}

/// Whether the UTF-16LE encoding of `needle` occurs in `payload`.
fn contains_utf16(payload: &[u8], needle: &str) -> bool {
    let n = utf16(needle);
    payload.windows(n.len()).any(|w| w == n.as_slice())
}

/// The DONE-family tokens at the end of a payload: the final 13 bytes.
fn final_done(payload: &[u8]) -> (u8, u16) {
    let t = &payload[payload.len() - 13..];
    (t[0], u16::from_le_bytes([t[1], t[2]]))
}

#[tokio::test]
async fn login_reply_carries_loginack_for_tds_7_4_and_the_negotiated_packet_size() {
    let server = start().await;
    let (_s, reply) = logged_in(server.addr, 8192).await;
    let ack = reply.iter().position(|b| *b == 0xAD).expect("LOGINACK");
    assert_eq!(&reply[ack + 4..ack + 8], &[0x74, 0x00, 0x00, 0x04]);
    assert!(contains_utf16(&reply, "Microsoft SQL Server"));
    assert!(contains_utf16(&reply, "8192"), "ENVCHANGE packet size");
    assert!(contains_utf16(&reply, "mgc"), "ENVCHANGE database");
    assert_eq!(final_done(&reply), (0xFD, 0));
    let login = server.backend.state.lock().unwrap().logins[0].clone();
    assert_eq!(login.password, PASSWORD);
    assert_eq!(login.host_name, "client.example.com");
}

#[tokio::test]
async fn responses_are_split_at_the_negotiated_packet_size_with_eom_only_on_the_last() {
    let server = start().await;
    let (mut s, _) = logged_in(server.addr, 8192).await;
    s.write_all(&packet(0x01, EOM, &batch("ROWS 2000")))
        .await
        .unwrap();
    let (packets, payload) = read_response(&mut s).await;
    assert!(packets.len() > 2, "2000 rows need several packets");
    let (last, full) = packets.split_last().unwrap();
    for (status, len, spid) in full {
        assert_eq!((*status, *len), (0, 8192));
        assert_eq!(*spid, 51, "the header carries the session id");
    }
    assert_eq!(last.0, EOM);
    assert!(last.1 <= 8192);
    assert_eq!(final_done(&payload), (0xFD, 0x0010));
}

#[tokio::test]
async fn a_request_spread_over_several_packets_is_reassembled() {
    let server = start().await;
    let (mut s, _) = logged_in(server.addr, 4096).await;
    let sql = vec!["SELECT 1"; 1500].join("; ");
    let payload = batch(&sql);
    let chunks: Vec<&[u8]> = payload.chunks(4088).collect();
    for (i, c) in chunks.iter().enumerate() {
        let status = if i + 1 == chunks.len() { EOM } else { 0 };
        s.write_all(&packet(0x01, status, c)).await.unwrap();
    }
    let (_, reply) = read_response(&mut s).await;
    // 1500 result sets, each ending in DONE with DONE_COUNT (and DONE_MORE but the last).
    assert_eq!(final_done(&reply), (0xFD, 0x0010));
    assert!(reply.len() > 1500 * 13);
}

#[tokio::test]
async fn attention_while_idle_is_acknowledged_with_done_attn() {
    let server = start().await;
    let (mut s, _) = logged_in(server.addr, 4096).await;
    s.write_all(&packet(0x06, EOM, &[])).await.unwrap();
    let (_, reply) = read_response(&mut s).await;
    assert_eq!(reply.len(), 13);
    assert_eq!(final_done(&reply), (0xFD, 0x0020));
}

#[tokio::test]
async fn a_message_the_client_marks_ignore_is_discarded() {
    let server = start().await;
    let (mut s, _) = logged_in(server.addr, 4096).await;
    s.write_all(&packet(0x01, 0, &batch("SELECT 1")[..10]))
        .await
        .unwrap();
    s.write_all(&packet(0x01, EOM | IGNORE, &[])).await.unwrap();
    s.write_all(&packet(0x01, EOM, &batch("COUNT 7")))
        .await
        .unwrap();
    let (_, reply) = read_response(&mut s).await;
    assert_eq!(reply.len(), 13, "only the second batch is answered");
    assert_eq!(u64::from_le_bytes(reply[5..13].try_into().unwrap()), 7);
}

#[tokio::test]
async fn a_client_that_skips_prelogin_is_disconnected() {
    let server = start().await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(&login7(USER, PASSWORD, 4096)).await.unwrap();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(server.backend.state.lock().unwrap().logins.is_empty());
}

#[tokio::test]
async fn a_client_demanding_encryption_gets_encrypt_not_sup_then_the_close() {
    let server = start().await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(&prelogin(0x03)).await.unwrap();
    let (_, reply) = read_response(&mut s).await;
    // The ENCRYPTION option's offset is in the option table's second entry.
    let offset = u16::from_be_bytes([reply[6], reply[7]]) as usize;
    assert_eq!(reply[5], 0x01);
    assert_eq!(reply[offset], 0x02, "ENCRYPT_NOT_SUP");
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the server closes after refusing encryption");
}

/// A transaction-manager request: ALL_HEADERS, the request type and its payload.
fn tm_request(request_type: u16, body: &[u8]) -> Vec<u8> {
    let mut p = batch("");
    p.extend_from_slice(&request_type.to_le_bytes());
    p.extend_from_slice(body);
    packet(0x0E, EOM, &p)
}

/// The number of the first ERROR token in a payload that starts with it.
fn leading_error_number(payload: &[u8]) -> i32 {
    assert_eq!(payload[0], 0xAA, "an ERROR token first: {payload:?}");
    i32::from_le_bytes(payload[3..7].try_into().unwrap())
}

#[tokio::test]
async fn dtc_address_request_is_refused_with_an_error_and_the_connection_stays_usable() {
    let server = start().await;
    let (mut s, _) = logged_in(server.addr, 4096).await;
    // TM_GET_DTC_ADDRESS with an empty (USHORT 0) payload.
    s.write_all(&tm_request(0, &[0, 0])).await.unwrap();
    let (_, reply) = read_response(&mut s).await;
    assert_eq!(leading_error_number(&reply), 50000);
    assert!(contains_utf16(&reply, "TM_GET_DTC_ADDRESS"));
    assert_eq!(final_done(&reply), (0xFD, 0x0002));
    s.write_all(&packet(0x01, EOM, &batch("ROWS 1")))
        .await
        .unwrap();
    let (_, reply) = read_response(&mut s).await;
    assert_eq!(final_done(&reply), (0xFD, 0x0010));
}

#[tokio::test]
async fn begin_transaction_request_to_a_backend_without_transactions_is_an_error_not_a_drop() {
    let server = start().await;
    let (mut s, _) = logged_in(server.addr, 4096).await;
    // TM_BEGIN_XACT: isolation level 0 (unchanged), empty name.
    s.write_all(&tm_request(5, &[0, 0])).await.unwrap();
    let (_, reply) = read_response(&mut s).await;
    assert_eq!(leading_error_number(&reply), 50000);
    s.write_all(&packet(0x01, EOM, &batch("ROWS 1")))
        .await
        .unwrap();
    let (_, reply) = read_response(&mut s).await;
    assert_eq!(final_done(&reply), (0xFD, 0x0010));
}
