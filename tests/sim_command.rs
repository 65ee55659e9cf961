//! The `pchat-operator sim` command as a user runs it: the real binary on a topology with
//! port-0 listens and a control endpoint; its address lines, a tiberius login, faults posted
//! over HTTP (an instance down refuses connections, back up accepts them), and a clean exit
//! on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio_util::compat::TokioAsyncWriteCompatExt;

const TOPOLOGY: &str = r#"
instances:
  - {name: atl-sql1, site: atlanta, listen: "127.0.0.1:0", logins: [{name: sa, password: Pchat-Sim-1}]}
  - {name: dal-sql1, site: dallas, listen: "127.0.0.1:0", logins: [{name: sa, password: Pchat-Sim-1}]}
shares:
  - {host: atl-fs, share: pchat-ls, site: atlanta}
databases:
  - {name: mgc, instance: atl-sql1}
"#;

/// The running command; killed if a test fails before it exits.
struct Sim {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Start `sim` and read its "name site addr" lines and its "control http://addr" line.
fn start() -> (Sim, Vec<(String, String, SocketAddr)>, SocketAddr) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("simcmd-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let topology = dir.join("topology.yaml");
    std::fs::write(&topology, TOPOLOGY).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pchat-operator"))
        .arg("sim")
        .arg("--topology")
        .arg(&topology)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--control")
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let sim = Sim { child, dir };
    let mut instances = Vec::new();
    let control = loop {
        let line = lines
            .next()
            .expect("sim exited before printing its control address")
            .unwrap();
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["control", url] => {
                break url
                    .strip_prefix("http://")
                    .expect("control line is http://addr")
                    .parse()
                    .unwrap();
            }
            [name, site, addr] => {
                instances.push((name.to_string(), site.to_string(), addr.parse().unwrap()))
            }
            _ => panic!("unexpected line from sim: {line:?}"),
        }
    };
    (sim, instances, control)
}

async fn server_name(addr: SocketAddr) -> Result<String, String> {
    let mut config = Config::new();
    config.host("127.0.0.1");
    config.port(addr.port());
    config.authentication(AuthMethod::sql_server("sa", "Pchat-Sim-1"));
    config.encryption(EncryptionLevel::NotSupported);
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut client = Client::connect(config, tcp.compat_write())
        .await
        .map_err(|e| e.to_string())?;
    let row = client
        .simple_query("SELECT @@SERVERNAME")
        .await
        .map_err(|e| e.to_string())?
        .into_row()
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no row")?;
    Ok(row.get::<&str, _>(0).ok_or("NULL server name")?.to_string())
}

/// POST a fault as JSON to the control endpoint; the HTTP status code.
fn post_fault(control: SocketAddr, json: &str) -> u16 {
    let mut s = TcpStream::connect(control).unwrap();
    write!(
        s,
        "POST /faults HTTP/1.1\r\nHost: {control}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

/// Wait up to five seconds for `f` to hold.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[tokio::test]
async fn sim_command_serves_the_topology_obeys_the_control_endpoint_and_exits_0_on_sigterm() {
    let (mut sim, instances, control) = start();
    let names: Vec<(&str, &str)> = instances
        .iter()
        .map(|(n, s, _)| (n.as_str(), s.as_str()))
        .collect();
    assert_eq!(names, [("atl-sql1", "atlanta"), ("dal-sql1", "dallas")]);
    let atl = instances[0].2;
    assert_ne!(atl.port(), 0, "the printed address is the bound port");
    assert_eq!(server_name(atl).await.unwrap(), "atl-sql1");

    assert_eq!(
        post_fault(control, r#"{"kind":"InstanceDown","instance":"atl-sql1"}"#),
        204
    );
    assert!(
        eventually(|| TcpStream::connect(atl).is_err()),
        "atl-sql1 still accepts connections while down"
    );
    assert_eq!(
        post_fault(control, r#"{"kind":"InstanceUp","instance":"atl-sql1"}"#),
        204
    );
    assert!(eventually(|| TcpStream::connect(atl).is_ok()));
    assert_eq!(server_name(atl).await.unwrap(), "atl-sql1");
    assert_eq!(
        post_fault(control, r#"{"kind":"InstanceDown","instance":"nosuch"}"#),
        400
    );

    let pid = sim.child.id() as libc::pid_t;
    // SAFETY: kill(2) with a pid this test spawned and still owns (not yet waited for).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = sim.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "sim did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}
