//! The real [`SqlPort`]: observation through `sql::observe::Observer` (one batch per instance,
//! concurrently) and steps through `sql::execute::run_step`, sharing one kept connection per
//! instance.

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use tokio::sync::watch;

use super::{SqlPort, StepError, StepRun, WriteGate};
use pchat_core::api::PersistentChatPoolSpec;
use pchat_core::observe::{Observation, Published};
use pchat_core::plan::Step;
use pchat_sql::connect::{ConnectSettings, Credentials};
use pchat_sql::execute::{ProgressReports, RunOptions, StatementProgress, run_step};
use pchat_sql::observe::Observer;
use pchat_sql::statements::StatementContext;

/// Where the connection settings come from.
enum Settings {
    /// From the spec on every call (TLS mode and timeouts follow spec edits), with these
    /// credentials and CA file.
    FromSpec {
        credentials: Credentials,
        ca_certificate: Option<PathBuf>,
    },
    /// Fixed settings (tests with short timeouts).
    Fixed(ConnectSettings),
}

/// SQL Server reached over TDS.
pub struct LivePort {
    observer: Observer,
    settings: Settings,
    run_options: RunOptions,
    /// The workstation name its logins give (see [`ConnectSettings::client_name`]).
    client_name: Option<String>,
    /// Readings of the BACKUP or RESTORE a step has running (sent by `run_options.progress`).
    progress: watch::Receiver<Option<StatementProgress>>,
}

/// How often a running BACKUP or RESTORE is read: often enough for a dashboard, rarely enough
/// to cost nothing beside the statement (one small query on the instance's other connection).
pub const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// `options` reporting progress every `every`, and the receiving end.
fn with_progress(
    mut options: RunOptions,
    every: Duration,
) -> (RunOptions, watch::Receiver<Option<StatementProgress>>) {
    let (sender, receiver) = watch::channel(None);
    options.progress = Some(ProgressReports { every, sender });
    (options, receiver)
}

impl LivePort {
    /// A port whose TLS mode and timeouts follow the spec.
    pub fn new(credentials: Credentials, ca_certificate: Option<PathBuf>) -> Self {
        let (run_options, progress) = with_progress(RunOptions::default(), PROGRESS_EVERY);
        LivePort {
            observer: Observer::new(),
            settings: Settings::FromSpec {
                credentials,
                ca_certificate,
            },
            run_options,
            client_name: None,
            progress,
        }
    }

    /// The same port, logging in as workstation `name` (`HOST_NAME()` on the server): in
    /// Kubernetes the replica's identity, so the server's sessions and statement logs say
    /// which replica acted.
    pub fn with_client_name(mut self, name: &str) -> Self {
        self.client_name = Some(name.to_string());
        self
    }

    /// A port with fixed connection settings and step retry options.
    pub fn with_settings(settings: ConnectSettings, run_options: RunOptions) -> Self {
        let (run_options, progress) = with_progress(run_options, PROGRESS_EVERY);
        LivePort {
            observer: Observer::new(),
            settings: Settings::Fixed(settings),
            run_options,
            client_name: None,
            progress,
        }
    }

    /// The same port, reading a running BACKUP or RESTORE every `every`.
    pub fn with_progress_every(mut self, every: Duration) -> Self {
        let options = std::mem::take(&mut self.run_options);
        (self.run_options, self.progress) = with_progress(options, every);
        self
    }

    /// Observation batches sent so far.
    pub fn round_trips(&self) -> u64 {
        self.observer.round_trips()
    }

    /// Close the connections BACKUP and RESTORE went on (see
    /// [`pchat_sql::connect::Connections::close_unbounded`]); the kept one per instance stays.
    pub fn close_long_connections(&mut self) {
        self.observer.connections().close_unbounded();
    }

    /// Close every connection (the next pass logs in again).
    pub fn close_connections(&mut self) {
        self.observer.connections().close_all();
    }

    fn settings(&self, spec: &PersistentChatPoolSpec) -> ConnectSettings {
        let mut settings = match &self.settings {
            Settings::FromSpec {
                credentials,
                ca_certificate,
            } => ConnectSettings::from_spec(spec, credentials.clone(), ca_certificate.clone()),
            Settings::Fixed(s) => s.clone(),
        };
        if let Some(name) = &self.client_name {
            settings.client_name = Some(name.clone());
        }
        settings
    }
}

impl SqlPort for LivePort {
    fn observe<'a>(
        &'a mut self,
        spec: &'a PersistentChatPoolSpec,
        published: Option<Published>,
        now: Timestamp,
    ) -> BoxFuture<'a, Observation> {
        let settings = self.settings(spec);
        Box::pin(async move { self.observer.observe(spec, &settings, published, now).await })
    }

    fn run<'a>(
        &'a mut self,
        spec: &'a PersistentChatPoolSpec,
        step: &'a Step,
        obs: &'a Observation,
        gate: &'a dyn WriteGate,
    ) -> BoxFuture<'a, Result<StepRun, StepError>> {
        let settings = self.settings(spec);
        let ctx = StatementContext::from_observation(obs);
        Box::pin(async move {
            let report = run_step(
                self.observer.connections(),
                &settings,
                spec,
                step,
                &ctx,
                &self.run_options,
                gate,
            )
            .await?;
            Ok(StepRun {
                statements_sent: report.statements_sent,
                writes: report.writes,
                elapsed: report.elapsed,
            })
        })
    }

    fn progress(&self) -> Option<watch::Receiver<Option<StatementProgress>>> {
        Some(self.progress.clone())
    }
}
