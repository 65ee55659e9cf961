//! Shared helpers for the simulator model tests: a two-site world in a fresh state directory
//! and a session that runs T-SQL through `Backend::batch`/`rpc`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pchat_operator::sim::backend::{
    LoginRequest, Outcome, Output, RpcParam, RpcRequest, Session, SharedBackend, Value,
};
use pchat_operator::sim::server::{Simulator, Topology};
use tokio_util::sync::CancellationToken;

pub const TOPOLOGY: &str = r#"
instances:
  - {name: atl-sql1, site: atlanta, listen: "127.0.0.1:14331", logins: [{name: sa, password: Pchat-Sim-1}], aliases: [atl-sql1.litwareinc.com]}
  - {name: atl-sql2, site: atlanta, listen: "127.0.0.1:14332", logins: [{name: sa, password: Pchat-Sim-1}]}
  - {name: dal-sql1, site: dallas, listen: "127.0.0.1:14333", logins: [{name: sa, password: Pchat-Sim-1}]}
  - {name: dal-sql2, site: dallas, listen: "127.0.0.1:14334", logins: [{name: sa, password: Pchat-Sim-1}]}
shares:
  - {host: atl-fs, share: pchat-ls, site: atlanta}
  - {host: dal-fs, share: pchat-ls, site: dallas}
databases:
  - {name: mgc, instance: atl-sql1}
  - {name: mgccomp, instance: atl-sql1}
jobs: {backup_ms: 150, copy_ms: 150, restore_ms: 150, mirroring_ms: 20}
"#;

pub struct World {
    pub sim: Arc<Simulator>,
    pub dir: PathBuf,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn world(name: &str) -> World {
    world_with(name, TOPOLOGY)
}

pub fn world_with(name: &str, yaml: &str) -> World {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("simmodel-{name}-{}-{nanos}", std::process::id()));
    let topo = Topology::from_yaml(yaml).unwrap();
    let sim = Simulator::new(topo, &dir).unwrap();
    World { sim, dir }
}

pub struct Conn {
    pub backend: SharedBackend,
    pub session: Session,
}

impl World {
    pub fn connect(&self, instance: &str) -> Conn {
        self.connect_as(instance, "ops-host", "pchat-operator", "")
    }

    pub fn connect_as(&self, instance: &str, host: &str, app: &str, db: &str) -> Conn {
        let backend = self.sim.backend(instance).unwrap();
        let session = backend
            .login(LoginRequest {
                user: "sa".into(),
                password: "Pchat-Sim-1".into(),
                host_name: host.into(),
                app_name: app.into(),
                database: db.into(),
                client_addr: "127.0.0.1:50000".into(),
            })
            .unwrap();
        Conn { backend, session }
    }
}

pub fn errors(o: &Outcome) -> Vec<i32> {
    o.outputs
        .iter()
        .filter_map(|x| match x {
            Output::Message(m) if m.class > 10 => Some(m.number),
            _ => None,
        })
        .collect()
}

pub fn error_texts(o: &Outcome) -> Vec<String> {
    o.outputs
        .iter()
        .filter_map(|x| match x {
            Output::Message(m) if m.class > 10 => Some(m.text.clone()),
            _ => None,
        })
        .collect()
}

pub fn result_sets(o: &Outcome) -> Vec<pchat_operator::sim::backend::ResultSet> {
    o.outputs
        .iter()
        .filter_map(|x| match x {
            Output::ResultSet(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

impl Conn {
    pub async fn exec(&self, sql: &str) -> Outcome {
        self.backend
            .batch(&self.session, sql.to_string(), CancellationToken::new())
            .await
    }

    /// Run and insist on no error.
    pub async fn ok(&self, sql: &str) -> Outcome {
        let o = self.exec(sql).await;
        assert!(errors(&o).is_empty(), "{sql}\n=> {:?}", error_texts(&o));
        o
    }

    /// Run and return the error numbers (must fail).
    pub async fn err(&self, sql: &str) -> Vec<i32> {
        let o = self.exec(sql).await;
        let e = errors(&o);
        assert!(!e.is_empty(), "{sql} was expected to fail");
        e
    }

    pub async fn rows(&self, sql: &str) -> Vec<Vec<Value>> {
        let o = self.ok(sql).await;
        result_sets(&o).pop().expect("a result set").rows
    }

    pub async fn scalar(&self, sql: &str) -> Value {
        self.rows(sql).await.remove(0).remove(0)
    }

    pub async fn text(&self, sql: &str) -> String {
        match self.scalar(sql).await {
            Value::NVarChar(s) => s,
            other => panic!("{sql}: expected text, got {other:?}"),
        }
    }

    pub async fn int(&self, sql: &str) -> i128 {
        match self.scalar(sql).await {
            Value::Int(i) => i as i128,
            Value::BigInt(i) => i as i128,
            Value::Numeric(n) => n,
            Value::Bit(b) => b as i128,
            other => panic!("{sql}: expected a number, got {other:?}"),
        }
    }

    pub async fn rpc_sql(&self, statement: &str, params: Vec<(&str, Value)>) -> Outcome {
        self.backend
            .rpc(
                &self.session,
                RpcRequest::ExecuteSql {
                    statement: statement.into(),
                    params: params
                        .into_iter()
                        .map(|(n, v)| RpcParam {
                            name: n.into(),
                            value: v,
                            output: false,
                        })
                        .collect(),
                },
                CancellationToken::new(),
            )
            .await
    }

    pub async fn rpc_proc(&self, name: &str, params: Vec<RpcParam>) -> Outcome {
        self.backend
            .rpc(
                &self.session,
                RpcRequest::Procedure {
                    name: name.into(),
                    params,
                },
                CancellationToken::new(),
            )
            .await
    }

    /// Insert messages `ids` into `db` as a chat server would (sp_executesql, @P1..).
    pub async fn post(&self, db: &str, ids: impl IntoIterator<Item = i64>) {
        for id in ids {
            let o = self
                .rpc_sql(
                    &format!("INSERT INTO [{db}].dbo.Messages (MessageId, ChatServer, Body, PostedAt) VALUES (@P1, @P2, @P3, SYSUTCDATETIME())"),
                    vec![
                        ("@P1", Value::BigInt(id)),
                        ("@P2", Value::NVarChar("atl-pc1".into())),
                        ("@P3", Value::NVarChar(format!("message {id}"))),
                    ],
                )
                .await;
            assert!(errors(&o).is_empty(), "insert {id}: {:?}", error_texts(&o));
        }
    }
}

/// Poll `f` every 10 ms until it is true or `ms` elapse.
pub async fn eventually<F: FnMut() -> bool>(ms: u64, mut f: F) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    loop {
        if f() {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn ids(r: std::ops::Range<i64>) -> Vec<i64> {
    r.collect()
}
