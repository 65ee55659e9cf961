//! One client connection: PRELOGIN, LOGIN7, then requests until the client leaves, the
//! session is killed or the server shuts down.

use std::net::SocketAddr;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::login::{
    client_encryption, decode_login7, demands_encryption, negotiate_packet_size, prelogin_response,
};
use super::packet::{DEFAULT_PACKET_SIZE, Message, frame, packet_type, read_message};
use super::rpc::{decode_batch, decode_rpc};
use super::tokens::{RequestKind, attention_ack, encode_outcome, login_failure, login_success};
use crate::sim::backend::{LoginRequest, ServerMessage, Session, SharedBackend};

/// Why a connection ended (for the log).
#[derive(Debug, thiserror::Error)]
enum End {
    #[error("the client closed the connection")]
    ClientClosed,
    #[error("the session was killed")]
    Killed,
    #[error("the server is shutting down")]
    Shutdown,
    #[error("refused: {0}")]
    Refused(&'static str),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("i/o error: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for End {
    fn from(e: std::io::Error) -> Self {
        End::Io(e)
    }
}

/// Writes server messages, splitting them to the negotiated packet size.
struct Writer {
    half: OwnedWriteHalf,
    packet_size: usize,
    spid: u16,
    packet_id: u8,
}

impl Writer {
    async fn send(&mut self, ty: u8, payload: &[u8]) -> std::io::Result<()> {
        let bytes = frame(
            ty,
            payload,
            self.packet_size,
            self.spid,
            &mut self.packet_id,
        );
        self.half.write_all(&bytes).await?;
        self.half.flush().await
    }

    async fn reply(&mut self, payload: &[u8]) -> std::io::Result<()> {
        self.send(packet_type::TABULAR_RESULT, payload).await
    }
}

async fn close<W: AsyncWrite + Unpin>(w: &mut W) {
    // The peer may already be gone; nothing useful to do with that error.
    let _ = w.shutdown().await;
}

/// Serves one accepted connection to its end.
pub async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    backend: SharedBackend,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (mut read_half, write_half) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<std::io::Result<Message>>(4);
    // A separate reader lets an ATTENTION arrive while a request is running.
    let reader = tokio::spawn(async move {
        loop {
            let next = read_message(&mut read_half).await;
            let stop = !matches!(next, Ok(Some(_)));
            let item = match next {
                Ok(Some(m)) => Ok(m),
                Ok(None) => break,
                Err(e) => Err(e),
            };
            if tx.send(item).await.is_err() || stop {
                break;
            }
        }
    });
    let mut writer = Writer {
        half: write_half,
        packet_size: DEFAULT_PACKET_SIZE,
        spid: 0,
        packet_id: 1,
    };
    let mut session = None;
    let end = serve_connection(&mut writer, &mut rx, peer, &backend, &stop, &mut session).await;
    match &end {
        End::ClientClosed | End::Shutdown | End::Killed => {
            tracing::debug!(%peer, %end, "connection ended")
        }
        _ => tracing::info!(%peer, %end, "connection ended"),
    }
    if let Some(session) = &session {
        backend.logout(session);
    }
    close(&mut writer.half).await;
    // Dropping the read half with the write half closes the socket.
    reader.abort();
}

async fn next_message(
    rx: &mut mpsc::Receiver<std::io::Result<Message>>,
    stop: &CancellationToken,
    killed: Option<&CancellationToken>,
) -> Result<Message, End> {
    let killed_fut = async {
        match killed {
            Some(k) => k.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        m = rx.recv() => match m {
            Some(Ok(m)) => Ok(m),
            Some(Err(e)) => Err(End::Io(e)),
            None => Err(End::ClientClosed),
        },
        _ = stop.cancelled() => Err(End::Shutdown),
        _ = killed_fut => Err(End::Killed),
    }
}

async fn serve_connection(
    w: &mut Writer,
    rx: &mut mpsc::Receiver<std::io::Result<Message>>,
    peer: SocketAddr,
    backend: &SharedBackend,
    stop: &CancellationToken,
    session_slot: &mut Option<Session>,
) -> End {
    // PRELOGIN.
    let m = match next_message(rx, stop, None).await {
        Ok(m) => m,
        Err(e) => return e,
    };
    if m.ty != packet_type::PRELOGIN {
        return End::Protocol(format!("expected PRELOGIN, got packet type {:#04x}", m.ty));
    }
    let encryption = match client_encryption(&m.payload) {
        Ok(level) => level,
        Err(e) => return End::Protocol(e.to_string()),
    };
    if let Err(e) = w
        .send(packet_type::TABULAR_RESULT, &prelogin_response())
        .await
    {
        return e.into();
    }
    if demands_encryption(encryption) {
        // The client reads ENCRYPT_NOT_SUP, fails its negotiation, and sees the close.
        return End::Refused("client demands encryption, which this server does not support");
    }

    // LOGIN7.
    let m = match next_message(rx, stop, None).await {
        Ok(m) => m,
        Err(e) => return e,
    };
    if m.ty != packet_type::LOGIN7 {
        // A PRELOGIN here is a TLS handshake from a client that chose encryption anyway.
        return End::Refused("expected LOGIN7 (TLS is not supported)");
    }
    let login = match decode_login7(&m.payload) {
        Ok(l) => l,
        Err(e) => return End::Protocol(e.to_string()),
    };
    let request = LoginRequest {
        user: login.user.clone(),
        password: login.password,
        host_name: login.host_name,
        app_name: login.app_name,
        database: login.database,
        client_addr: peer.ip().to_string(),
    };
    let session = match backend.login(request) {
        Ok(s) => s,
        Err(message) => {
            tracing::info!(%peer, user = %login.user, number = message.number, "login refused");
            if let Err(e) = w.reply(&login_failure(&message)).await {
                return e.into();
            }
            return End::Refused("login failed");
        }
    };
    let packet_size = negotiate_packet_size(login.packet_size);
    let reply = login_success(&session.server_name, &session.database, packet_size);
    w.spid = session.session_id as u16;
    let sent = w.reply(&reply).await;
    // The new size applies from the first message after the login response.
    w.packet_size = packet_size;
    let killed = session.killed.clone();
    let server_name = session.server_name.clone();
    *session_slot = Some(session.clone());
    if let Err(e) = sent {
        return e.into();
    }

    loop {
        let m = match next_message(rx, stop, Some(&killed)).await {
            Ok(m) => m,
            Err(e) => return e,
        };
        let kind = match m.ty {
            packet_type::SQL_BATCH => RequestKind::Batch,
            packet_type::RPC => RequestKind::Rpc,
            packet_type::ATTENTION => {
                // The request already finished; the client still waits for the ack.
                if let Err(e) = w.reply(&attention_ack()).await {
                    return e.into();
                }
                continue;
            }
            other => return End::Protocol(format!("unexpected packet type {other:#04x}")),
        };
        let cancel = CancellationToken::new();
        let fut = match kind {
            RequestKind::Batch => match decode_batch(&m.payload) {
                Ok(sql) => backend.batch(&session, sql, cancel.clone()),
                Err(e) => return End::Protocol(e.to_string()),
            },
            RequestKind::Rpc => match decode_rpc(&m.payload) {
                Ok(req) => backend.rpc(&session, req, cancel.clone()),
                Err(e) => {
                    // A parameter type outside the supported set is the client's to fix,
                    // and the connection stays usable (SQL Server answers 8016 and the like).
                    let outcome = crate::sim::backend::Outcome {
                        outputs: vec![crate::sim::backend::Output::Message(ServerMessage {
                            number: 8016,
                            state: 1,
                            class: 16,
                            text: format!(
                                "The incoming tabular data stream (TDS) remote procedure call (RPC) protocol stream is incorrect. {e}"
                            ),
                            server: server_name.clone(),
                            procedure: String::new(),
                            line: 1,
                        })],
                    };
                    if let Err(e) = w.reply(&encode_outcome(&outcome, kind, &server_name)).await {
                        return e.into();
                    }
                    continue;
                }
            },
        };
        let outcome = match await_request(fut, &cancel, rx, &killed, stop).await {
            Ok(outcome) => outcome,
            Err(end) => return end,
        };
        let reply = match outcome {
            Some(outcome) => encode_outcome(&outcome, kind, &server_name),
            None => attention_ack(),
        };
        if let Err(e) = w.reply(&reply).await {
            return e.into();
        }
    }
}

/// Runs a request to its outcome, or to `None` when the client sent ATTENTION (the model is
/// told through `cancel` and its partial outcome discarded, as the client discards it too).
async fn await_request(
    fut: futures::future::BoxFuture<'static, crate::sim::backend::Outcome>,
    cancel: &CancellationToken,
    rx: &mut mpsc::Receiver<std::io::Result<Message>>,
    killed: &CancellationToken,
    stop: &CancellationToken,
) -> Result<Option<crate::sim::backend::Outcome>, End> {
    let mut fut = fut;
    let end = tokio::select! {
        outcome = &mut fut => return Ok(Some(outcome)),
        m = rx.recv() => match m {
            Some(Ok(m)) if m.ty == packet_type::ATTENTION => {
                cancel.cancel();
                let _ = fut.await;
                return Ok(None);
            }
            Some(Ok(m)) => End::Protocol(format!(
                "packet type {:#04x} while a request is running (no MARS)",
                m.ty
            )),
            Some(Err(e)) => End::Io(e),
            None => End::ClientClosed,
        },
        _ = killed.cancelled() => End::Killed,
        _ = stop.cancelled() => End::Shutdown,
    };
    cancel.cancel();
    Err(end)
}
