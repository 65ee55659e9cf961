//! A running simulator: the model plus one TDS listener per instance (following the model's
//! up/down state) and, optionally, the HTTP control endpoint. Used by `pchat-operator sim`, the
//! demo and the integration tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::server::{Simulator, Topology};
use super::tls::Certificates;
use super::{control, tds};
use crate::Error;

/// One instance's listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningInstance {
    pub name: String,
    pub site: String,
    /// The address actually bound (a topology port 0 becomes the port the system chose).
    pub addr: SocketAddr,
}

/// A simulator serving TDS until stopped (or dropped).
pub struct RunningSim {
    pub sim: Arc<Simulator>,
    pub instances: Vec<RunningInstance>,
    /// The control endpoint's address, when one was asked for.
    pub control: Option<SocketAddr>,
    /// The PEM file of the CA that signed the instances' certificates, when the simulator
    /// made them (the topology names no certificate and does not disable encryption).
    pub ca_file: Option<PathBuf>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl RunningSim {
    /// Build the model and bind every listener. Must run inside a tokio runtime.
    pub async fn start(
        topology: Topology,
        state_dir: impl AsRef<Path>,
        control_addr: Option<SocketAddr>,
    ) -> Result<RunningSim, Error> {
        let certificates =
            Certificates::prepare(&topology.tls, &topology.instances, state_dir.as_ref())?;
        let sim = Simulator::new(topology, state_dir)?;
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut instances = Vec::new();
        for (name, site, listen) in sim.instances() {
            let listen_failed = |source| Error::Listen {
                endpoint: format!("instance {name}"),
                addr: listen.clone(),
                source,
            };
            let listener = TcpListener::bind(&listen).await.map_err(listen_failed)?;
            let addr = listener.local_addr().map_err(listen_failed)?;
            // `instances()` lists the model's own instances, each built with a backend and an
            // up/down state by `Simulator::new`.
            let backend = sim
                .backend(&name)
                .expect("every instance of the model has a backend");
            let up = sim
                .watch_up(&name)
                .expect("every instance of the model has an up/down state");
            let stop = shutdown.child_token();
            let instance = name.clone();
            let tls = certificates.listener(&name);
            tasks.spawn(async move {
                if let Err(e) = tds::serve_listener_while_up(listener, backend, tls, up, stop).await
                {
                    tracing::error!(%instance, error = %e, "TDS listener stopped");
                }
            });
            instances.push(RunningInstance { name, site, addr });
        }
        let control = match control_addr {
            None => None,
            Some(addr) => {
                let listen_failed = |source| Error::Listen {
                    endpoint: "control endpoint".into(),
                    addr: addr.to_string(),
                    source,
                };
                let listener = TcpListener::bind(addr).await.map_err(listen_failed)?;
                let bound = listener.local_addr().map_err(listen_failed)?;
                tasks.spawn(control::serve(
                    listener,
                    sim.clone(),
                    shutdown.child_token(),
                ));
                Some(bound)
            }
        };
        Ok(RunningSim {
            sim,
            instances,
            control,
            ca_file: certificates.ca_file,
            shutdown,
            tasks,
        })
    }

    /// The address an instance listens on.
    pub fn addr(&self, instance: &str) -> Option<SocketAddr> {
        self.instances
            .iter()
            .find(|i| i.name.eq_ignore_ascii_case(instance))
            .map(|i| i.addr)
    }

    /// Close every listener and connection and wait for them to finish.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A copy of a topology with every listen port set to 0 (the system picks free ones), for
/// tests and the demo, which must not collide with each other or with a running `sim`.
pub fn with_free_ports(mut topology: Topology) -> Topology {
    for instance in &mut topology.instances {
        let host = instance
            .listen
            .rsplit_once(':')
            .map(|(h, _)| h.to_string())
            .unwrap_or_else(|| "127.0.0.1".into());
        instance.listen = format!("{host}:0");
    }
    topology
}
