//! The server side of TDS 7.x's TLS handshake, which travels inside PRELOGIN (0x12) packets
//! (MS-TDS 2.2.6.5): while the handshake runs, each read yields the payloads of the client's
//! PRELOGIN packets and each flush sends what rustls wrote as PRELOGIN packets; once it is
//! done, TLS records go over the socket bare, as SQL Server sends them.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::packet::{DEFAULT_PACKET_SIZE, HEADER_LEN, packet_type};

/// A stream that frames the TLS handshake in PRELOGIN packets until told it is over.
pub struct PreloginFramed<S> {
    inner: S,
    framing: bool,
    /// The header of the packet being read, and how much of it has arrived.
    header: [u8; HEADER_LEN],
    header_read: usize,
    /// Payload bytes of the current client packet not yet handed to rustls.
    payload_left: usize,
    /// Handshake bytes rustls wrote since the last flush.
    pending: Vec<u8>,
    /// Framed bytes being sent, and how many went out.
    sending: Vec<u8>,
    sent: usize,
}

impl<S> PreloginFramed<S> {
    pub fn new(inner: S) -> Self {
        PreloginFramed {
            inner,
            framing: true,
            header: [0; HEADER_LEN],
            header_read: 0,
            payload_left: 0,
            pending: Vec::new(),
            sending: Vec::new(),
            sent: 0,
        }
    }

    /// The handshake is over: from now on bytes pass through unframed.
    pub fn handshake_done(&mut self) {
        self.framing = false;
    }

    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for PreloginFramed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.framing {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        while this.payload_left == 0 {
            while this.header_read < HEADER_LEN {
                let mut header = ReadBuf::new(&mut this.header[this.header_read..]);
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut header))?;
                let got = header.filled().len();
                if got == 0 {
                    // End of stream: rustls reports the handshake cut short.
                    return Poll::Ready(Ok(()));
                }
                this.header_read += got;
            }
            this.header_read = 0;
            if this.header[0] != packet_type::PRELOGIN {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "expected a PRELOGIN packet carrying the TLS handshake, got packet type {:#04x}",
                        this.header[0]
                    ),
                )));
            }
            let length = u16::from_be_bytes([this.header[2], this.header[3]]) as usize;
            if length < HEADER_LEN {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("TDS packet length {length} is shorter than its header"),
                )));
            }
            this.payload_left = length - HEADER_LEN;
        }
        let room = buf.remaining().min(this.payload_left);
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(room));
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
        let got = limited.filled().len();
        buf.advance(got);
        this.payload_left -= got;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for PreloginFramed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if !this.framing {
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        this.pending.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.sending.is_empty() && !this.pending.is_empty() {
            this.sending = frame_handshake(&std::mem::take(&mut this.pending));
            this.sent = 0;
        }
        while this.sent < this.sending.len() {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &this.sending[this.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            this.sent += n;
        }
        this.sending.clear();
        this.sent = 0;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Handshake bytes as PRELOGIN packets of at most the pre-login packet size, the last one
/// marked end of message.
fn frame_handshake(bytes: &[u8]) -> Vec<u8> {
    let chunk = DEFAULT_PACKET_SIZE - HEADER_LEN;
    let count = bytes.len().div_ceil(chunk).max(1);
    let mut framed = Vec::with_capacity(bytes.len() + count * HEADER_LEN);
    for (index, part) in bytes.chunks(chunk).enumerate() {
        let last = index + 1 == count;
        let length = (part.len() + HEADER_LEN) as u16;
        framed.push(packet_type::PRELOGIN);
        framed.push(u8::from(last));
        framed.extend_from_slice(&length.to_be_bytes());
        framed.extend_from_slice(&[0, 0, (index + 1) as u8, 0]);
        framed.extend_from_slice(part);
    }
    framed
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn handshake_bytes_are_read_out_of_prelogin_packets_and_written_into_them() {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let mut framed = PreloginFramed::new(server);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        // Two client packets carrying one handshake flight.
        let mut sent = frame_handshake(&[1, 2, 3]);
        sent.extend(frame_handshake(&[4, 5]));
        client_write.write_all(&sent).await.unwrap();
        let mut got = [0u8; 5];
        framed.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [1, 2, 3, 4, 5]);

        let reply = vec![7u8; DEFAULT_PACKET_SIZE + 10];
        framed.write_all(&reply).await.unwrap();
        framed.flush().await.unwrap();
        let mut first = vec![0u8; DEFAULT_PACKET_SIZE];
        client_read.read_exact(&mut first).await.unwrap();
        assert_eq!(first[0], packet_type::PRELOGIN);
        assert_eq!(first[1], 0, "not the last packet");
        let mut second = vec![0u8; HEADER_LEN + 18];
        client_read.read_exact(&mut second).await.unwrap();
        assert_eq!(second[1], 1, "the last packet ends the message");
        assert_eq!(&second[HEADER_LEN..], &[7u8; 18]);

        framed.handshake_done();
        framed.write_all(b"bare").await.unwrap();
        framed.flush().await.unwrap();
        let mut bare = [0u8; 4];
        client_read.read_exact(&mut bare).await.unwrap();
        assert_eq!(&bare, b"bare");
    }

    #[tokio::test]
    async fn a_packet_of_another_type_during_the_handshake_is_refused() {
        let (client, server) = tokio::io::duplex(1024);
        let mut framed = PreloginFramed::new(server);
        let (_, mut client_write) = tokio::io::split(client);
        client_write
            .write_all(&[packet_type::LOGIN7, 1, 0, 9, 0, 0, 1, 0, 0])
            .await
            .unwrap();
        let mut got = [0u8; 1];
        let e = framed.read_exact(&mut got).await.unwrap_err();
        assert!(e.to_string().contains("0x10"), "{e}");
    }
}
