//! One client connection: PRELOGIN, LOGIN7, then requests until the client leaves, the
//! session is killed or the server shuts down.

use std::net::SocketAddr;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::login::{
    Negotiated, client_encryption, decode_login7, negotiate_encryption, negotiate_packet_size,
    prelogin_response,
};
use super::packet::{DEFAULT_PACKET_SIZE, Message, frame, packet_type, read_message};
use super::prelogin_tls::PreloginFramed;
use super::rpc::{decode_batch, decode_rpc};
use super::tokens::{RequestKind, attention_ack, encode_outcome, login_failure, login_success};
use super::transaction::{TmRequest, decode_tm_request};
use crate::backend::{LoginRequest, Outcome, Output, ServerMessage, Session, SharedBackend};
use crate::tls::ListenerTls;

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
    #[error("TLS handshake failed: {0}")]
    Tls(std::io::Error),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// The byte a TLS record of the handshake starts with: a TDS 8 ("strict") client opens with
/// TLS, a TDS 7.x client with a PRELOGIN packet (0x12).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// A connection's byte stream after PRELOGIN: the socket itself, or TLS over it.
trait Transport: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Transport for T {}
type BoxedTransport = Box<dyn Transport>;

type Inbox = mpsc::Receiver<std::io::Result<Message>>;

/// The server side of one connection.
struct Conn {
    out: WriteHalf<BoxedTransport>,
    inbox: Inbox,
    stop: CancellationToken,
    /// Cancelled with the session once logged in; never before.
    killed: CancellationToken,
    packet_size: usize,
    spid: u16,
    packet_id: u8,
}

/// Serves one accepted connection to its end.
pub async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    backend: SharedBackend,
    tls: ListenerTls,
    stop: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let established = tokio::select! {
        established = establish(stream, &tls) => established,
        _ = stop.cancelled() => Err(End::Shutdown),
    };
    let established = match established {
        Ok(established) => established,
        Err(end) => {
            log_end(peer, &end);
            return;
        }
    };
    let (read_half, out) = tokio::io::split(established.transport);
    let (tx, inbox) = mpsc::channel(4);
    // A separate reader lets an ATTENTION arrive while a request is running.
    let reader = tokio::spawn(read_messages(read_half, tx));
    let mut conn = Conn {
        out,
        inbox,
        stop,
        killed: CancellationToken::new(),
        packet_size: DEFAULT_PACKET_SIZE,
        spid: 0,
        packet_id: 1,
    };
    let end = match conn
        .login(peer, &backend, established.login, established.encrypted)
        .await
    {
        Ok(session) => {
            let end = conn.serve_requests(&session, &backend).await;
            backend.logout(&session);
            end
        }
        Err(end) => end,
    };
    log_end(peer, &end);
    // The peer may already be gone; nothing useful to do with a failed shutdown.
    let _ = conn.out.shutdown().await;
    // Dropping the read half with the write half closes the socket.
    reader.abort();
}

fn log_end(peer: SocketAddr, end: &End) {
    match end {
        End::ClientClosed | End::Shutdown | End::Killed => {
            tracing::debug!(%peer, %end, "connection ended")
        }
        _ => tracing::info!(%peer, %end, "connection ended"),
    }
}

/// PRELOGIN, the TLS handshake it agrees on, and the LOGIN7 message: the transport the rest
/// of the connection uses (TLS, or the socket when nothing or only the login is encrypted).
async fn establish(mut stream: TcpStream, tls: &ListenerTls) -> Result<Established, End> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Err(End::ClientClosed);
    }
    if first[0] == TLS_HANDSHAKE_RECORD {
        let Some(configs) = &tls.config else {
            return Err(End::Refused(
                "TLS before PRELOGIN (TDS 8 strict), but this server has no certificate",
            ));
        };
        let mut tls_stream = TlsAcceptor::from(configs.strict.clone())
            .accept(stream)
            .await
            .map_err(End::Tls)?;
        let prelogin = expect(&mut tls_stream, packet_type::PRELOGIN, "PRELOGIN").await?;
        client_encryption(&prelogin.payload).map_err(|e| End::Protocol(e.to_string()))?;
        // The channel is already encrypted; the option is answered, not negotiated.
        send_prelogin_response(&mut tls_stream, super::login::ENCRYPT_ON).await?;
        let login = expect(&mut tls_stream, packet_type::LOGIN7, "LOGIN7").await?;
        return Ok(Established::new(tls_stream, login, true));
    }

    let prelogin = expect(&mut stream, packet_type::PRELOGIN, "PRELOGIN").await?;
    let client = client_encryption(&prelogin.payload).map_err(|e| End::Protocol(e.to_string()))?;
    let (answer, negotiated) = negotiate_encryption(tls.setting, client);
    send_prelogin_response(&mut stream, answer).await?;
    let configs = match (negotiated, &tls.config) {
        (Negotiated::Refused(why), _) => return Err(End::Refused(why)),
        (Negotiated::Plain, _) => {
            let login = expect(&mut stream, packet_type::LOGIN7, "LOGIN7").await?;
            return Ok(Established::new(stream, login, false));
        }
        (_, Some(configs)) => configs,
        (_, None) => unreachable!("a listener without a certificate negotiates Plain or Refused"),
    };
    let mut tls_stream = TlsAcceptor::from(configs.prelogin.clone())
        .accept(PreloginFramed::new(stream))
        .await
        .map_err(End::Tls)?;
    tls_stream.get_mut().0.handshake_done();
    let login = expect(&mut tls_stream, packet_type::LOGIN7, "LOGIN7").await?;
    if negotiated == Negotiated::LoginOnly {
        // The client drops TLS once LOGIN7 is sent, and reads the login response in clear.
        let (framed, _) = tls_stream.into_inner();
        return Ok(Established::new(framed.into_inner(), login, false));
    }
    Ok(Established::new(tls_stream, login, true))
}

/// A connection past PRELOGIN and the TLS handshake, with its LOGIN7 message.
struct Established {
    transport: BoxedTransport,
    login: Message,
    /// Whether what follows the login is encrypted.
    encrypted: bool,
}

impl Established {
    fn new(transport: impl Transport + 'static, login: Message, encrypted: bool) -> Self {
        Established {
            transport: Box::new(transport),
            login,
            encrypted,
        }
    }
}

/// The next message, which must be of type `ty`.
async fn expect<S: AsyncRead + Unpin>(stream: &mut S, ty: u8, name: &str) -> Result<Message, End> {
    match read_message(stream).await? {
        None => Err(End::ClientClosed),
        Some(m) if m.ty == ty => Ok(m),
        Some(m) => Err(End::Protocol(format!(
            "expected {name}, got packet type {:#04x}",
            m.ty
        ))),
    }
}

async fn send_prelogin_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    encryption: u8,
) -> Result<(), End> {
    let mut packet_id = 1;
    let bytes = frame(
        packet_type::TABULAR_RESULT,
        &prelogin_response(encryption),
        DEFAULT_PACKET_SIZE,
        0,
        &mut packet_id,
    );
    stream.write_all(&bytes).await?;
    stream.flush().await?;
    Ok(())
}

async fn read_messages(
    mut read_half: ReadHalf<BoxedTransport>,
    tx: mpsc::Sender<std::io::Result<Message>>,
) {
    loop {
        let item = match read_message(&mut read_half).await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => return,
            Err(e) => Err(e),
        };
        let last = item.is_err();
        if tx.send(item).await.is_err() || last {
            return;
        }
    }
}

impl Conn {
    async fn send(&mut self, payload: &[u8]) -> Result<(), End> {
        let bytes = frame(
            packet_type::TABULAR_RESULT,
            payload,
            self.packet_size,
            self.spid,
            &mut self.packet_id,
        );
        self.out.write_all(&bytes).await?;
        self.out.flush().await?;
        Ok(())
    }

    /// The next client message, unless the connection must end first.
    async fn next(&mut self) -> Result<Message, End> {
        tokio::select! {
            m = self.inbox.recv() => match m {
                Some(Ok(m)) => Ok(m),
                // A TLS client that hangs up without close_notify (as drivers do) has left,
                // like a plain client closing its socket.
                Some(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    Err(End::ClientClosed)
                }
                Some(Err(e)) => Err(End::Io(e)),
                None => Err(End::ClientClosed),
            },
            _ = self.stop.cancelled() => Err(End::Shutdown),
            _ = self.killed.cancelled() => Err(End::Killed),
        }
    }

    /// LOGIN7 up to a logged-in session.
    async fn login(
        &mut self,
        peer: SocketAddr,
        backend: &SharedBackend,
        m: Message,
        encrypted: bool,
    ) -> Result<Session, End> {
        let login = decode_login7(&m.payload).map_err(|e| End::Protocol(e.to_string()))?;
        let user = login.user.clone();
        let feature_ext = login.feature_ext;
        let request = LoginRequest {
            user: login.user,
            password: login.password,
            host_name: login.host_name,
            app_name: login.app_name,
            database: login.database,
            client_addr: peer.ip().to_string(),
            encrypted,
        };
        let session = match backend.login(request) {
            Ok(s) => s,
            Err(message) => {
                tracing::info!(%peer, %user, number = message.number, "login refused");
                self.send(&login_failure(&message)).await?;
                return Err(End::Refused("login failed"));
            }
        };
        let packet_size = negotiate_packet_size(login.packet_size);
        self.spid = session.session_id as u16;
        self.killed = session.killed.clone();
        let sent = self
            .send(&login_success(
                &session.server_name,
                &session.database,
                packet_size,
                feature_ext,
            ))
            .await;
        // The new size applies from the first message after the login response.
        self.packet_size = packet_size;
        if let Err(end) = sent {
            backend.logout(&session);
            return Err(end);
        }
        Ok(session)
    }

    /// SQL batches, RPCs and ATTENTIONs until the connection ends.
    async fn serve_requests(&mut self, session: &Session, backend: &SharedBackend) -> End {
        loop {
            if let Err(end) = self.serve_one(session, backend).await {
                return end;
            }
        }
    }

    async fn serve_one(&mut self, session: &Session, backend: &SharedBackend) -> Result<(), End> {
        let m = self.next().await?;
        let server = session.server_name.as_str();
        let cancel = CancellationToken::new();
        let (kind, fut) = match m.ty {
            packet_type::SQL_BATCH => {
                let sql = decode_batch(&m.payload).map_err(|e| End::Protocol(e.to_string()))?;
                (
                    RequestKind::Batch,
                    backend.batch(session, sql, cancel.clone()),
                )
            }
            packet_type::RPC => match decode_rpc(&m.payload) {
                Ok(rpc) => (
                    RequestKind::Rpc(rpc.wire_names),
                    backend.rpc(session, rpc.request, cancel.clone()),
                ),
                Err(e) => {
                    // A parameter outside the supported set is the client's to fix; the
                    // connection stays usable, as with SQL Server's 8016.
                    let outcome = Outcome {
                        outputs: vec![Output::Message(rpc_stream_error(server, &e.to_string()))],
                    };
                    let kind = RequestKind::Rpc(Vec::new());
                    return self.send(&encode_outcome(&outcome, &kind, server)).await;
                }
            },
            packet_type::TRANSACTION_MANAGER => match decode_tm_request(&m.payload) {
                Ok(TmRequest::Local(request)) => (
                    RequestKind::Batch,
                    backend.transaction(session, request, cancel.clone()),
                ),
                Ok(TmRequest::Unsupported(name)) => {
                    let outcome = Outcome {
                        outputs: vec![Output::Message(unsupported_tm_request(server, name))],
                    };
                    return self
                        .send(&encode_outcome(&outcome, &RequestKind::Batch, server))
                        .await;
                }
                Err(e) => return Err(End::Protocol(e.to_string())),
            },
            // The request already finished; the client still waits for the acknowledgement.
            packet_type::ATTENTION => return self.send(&attention_ack()).await,
            other => {
                return Err(End::Protocol(format!(
                    "unexpected packet type {other:#04x}"
                )));
            }
        };
        let reply = match self.await_request(fut, &cancel).await? {
            Some(outcome) => encode_outcome(&outcome, &kind, server),
            None => attention_ack(),
        };
        self.send(&reply).await
    }

    /// Runs a request to its outcome, or to `None` when the client sent ATTENTION: the model
    /// is told through `cancel` and its partial outcome discarded, as the client discards it.
    async fn await_request(
        &mut self,
        mut fut: BoxFuture<'static, Outcome>,
        cancel: &CancellationToken,
    ) -> Result<Option<Outcome>, End> {
        let end = tokio::select! {
            outcome = &mut fut => return Ok(Some(outcome)),
            m = self.inbox.recv() => match m {
                Some(Ok(m)) if m.ty == packet_type::ATTENTION => {
                    cancel.cancel();
                    // Wait for the model to stop, unless the connection must end first.
                    tokio::select! {
                        _ = fut => return Ok(None),
                        _ = self.killed.cancelled() => End::Killed,
                        _ = self.stop.cancelled() => End::Shutdown,
                    }
                }
                Some(Ok(m)) => End::Protocol(format!(
                    "packet type {:#04x} while a request is running (no MARS)",
                    m.ty
                )),
                Some(Err(e)) => End::Io(e),
                None => End::ClientClosed,
            },
            _ = self.killed.cancelled() => End::Killed,
            _ = self.stop.cancelled() => End::Shutdown,
        };
        cancel.cancel();
        Err(end)
    }
}

/// The answer to a distributed-transaction request. SQL Server would enlist in MS DTC; the
/// simulator has no coordinator, so it refuses with a user-class error (number 50000, the
/// number SQL Server gives messages that have no catalogued number) and keeps the connection.
fn unsupported_tm_request(server: &str, request: &str) -> ServerMessage {
    ServerMessage {
        number: 50000,
        state: 1,
        class: 16,
        text: format!(
            "The transaction manager request {request} is not supported: this server has no distributed transaction coordinator."
        ),
        server: server.to_string(),
        procedure: String::new(),
        line: 1,
    }
}

/// SQL Server's answer to an RPC it cannot decode.
fn rpc_stream_error(server: &str, detail: &str) -> ServerMessage {
    ServerMessage {
        number: 8016,
        state: 1,
        class: 16,
        text: format!(
            "The incoming tabular data stream (TDS) remote procedure call (RPC) protocol stream is incorrect. {detail}"
        ),
        server: server.to_string(),
        procedure: String::new(),
        line: 1,
    }
}
