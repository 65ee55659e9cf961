//! The HTTP control endpoint over loopback, with a fake injector (a test double recording
//! faults, standing in for the model's topology).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pchat_sim::control;
use pchat_sim::faults::{Fault, FaultInjector};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct FakeInjector {
    injected: Mutex<Vec<Fault>>,
}

impl FaultInjector for FakeInjector {
    fn inject(&self, fault: Fault) -> Result<(), String> {
        if let Fault::InstanceDown { instance } = &fault
            && instance == "nowhere"
        {
            return Err("no instance named 'nowhere' in the topology".into());
        }
        self.injected.lock().unwrap().push(fault);
        Ok(())
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::json!({ "faults": self.injected.lock().unwrap().len() })
    }
}

struct Endpoint {
    addr: std::net::SocketAddr,
    injector: Arc<FakeInjector>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start() -> Endpoint {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let injector = Arc::new(FakeInjector::default());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(control::serve(listener, injector.clone(), shutdown.clone()));
    Endpoint {
        addr,
        injector,
        shutdown,
        task,
    }
}

/// One HTTP/1.1 request; returns (status, body).
async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("timed out");
    let status: u16 = raw.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn posting_a_fault_injects_it_and_answers_204() {
    let ep = start().await;
    let (status, body) = request(
        ep.addr,
        "POST",
        "/faults",
        r#"{"kind": "InstanceDown", "instance": "atl-sql1"}"#,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        *ep.injector.injected.lock().unwrap(),
        vec![Fault::InstanceDown {
            instance: "atl-sql1".into()
        }]
    );
}

#[tokio::test]
async fn a_fault_the_injector_refuses_answers_400_with_its_message() {
    let ep = start().await;
    let (status, body) = request(
        ep.addr,
        "POST",
        "/faults",
        r#"{"kind": "InstanceDown", "instance": "nowhere"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("no instance named 'nowhere'"), "{body}");
    assert!(ep.injector.injected.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_body_that_is_not_a_fault_answers_400_naming_the_problem() {
    let ep = start().await;
    let (status, body) = request(ep.addr, "POST", "/faults", r#"{"kind": "Meteor"}"#).await;
    assert_eq!(status, 400);
    assert!(body.contains("Meteor"), "{body}");
    let (status, _) = request(ep.addr, "POST", "/faults", "not json").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn get_state_returns_the_injectors_description_as_json() {
    let ep = start().await;
    request(
        ep.addr,
        "POST",
        "/faults",
        r#"{"kind": "ShareDown", "host": "atl-fs"}"#,
    )
    .await;
    let (status, body) = request(ep.addr, "GET", "/state", "").await;
    assert_eq!(status, 200);
    let state: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(state, serde_json::json!({ "faults": 1 }));
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_are_refused() {
    let ep = start().await;
    assert_eq!(request(ep.addr, "GET", "/nope", "").await.0, 404);
    assert_eq!(request(ep.addr, "GET", "/faults", "").await.0, 405);
    assert_eq!(request(ep.addr, "POST", "/state", "").await.0, 405);
}

#[tokio::test]
async fn shutdown_stops_the_endpoint() {
    let ep = start().await;
    ep.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), ep.task)
        .await
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(ep.addr).await.is_err());
}
