//! Every log line of a pass names its pool and its pass, down to each SQL statement: in JSON,
//! what a log collector indexes. In a test binary of its own, with a global subscriber
//! installed before anything logs (a scoped subscriber races with other tests' threads
//! registering the same callsites).

use pchat_core::api::{PersistentChatPool, load_pool_yaml};
use pchat_operator::engine::sql_port::LivePort;
use pchat_operator::local::{self, Options};
use pchat_sql::testing::LogBuffer;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sql_statement_logs_its_pool_pass_and_step_in_json() {
    let buf = LogBuffer::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let live = pchat_sql::testing::start("engine-logs").await;
    let dir = std::env::temp_dir().join(format!("pchat-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut pool: PersistentChatPool =
        load_pool_yaml(include_str!("../examples/pool-local.yaml")).unwrap();
    pool.spec = live.spec.clone();
    let pool_file = dir.join("pool.yaml");
    std::fs::write(&pool_file, serde_saphyr::to_string(&pool).unwrap()).unwrap();
    let opts = Options {
        pool_file: pool_file.clone(),
        once: true,
        status_file: None,
        active_servers_file: dir.join("active-servers.yaml"),
    };
    let mut port = LivePort::with_settings(live.settings.clone(), pchat_sql::testing::opts());
    // Two passes: the first runs the bootstrap's first SQL step, the second the next one.
    let mut steps = Vec::new();
    for _ in 0..2 {
        let report = local::run(&opts, &mut port, CancellationToken::new())
            .await
            .unwrap()
            .unwrap();
        let (step, result) = report.step_ran.expect("a bootstrap step ran");
        assert!(result.is_ok(), "{result:?}");
        steps.push(step.name());
    }
    let _ = std::fs::remove_dir_all(&dir);

    let text = buf.text();
    let statements: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "running statement")
        .collect();
    assert!(!statements.is_empty(), "no statement was logged:\n{text}");
    let pool_name = pool_file.display().to_string();
    let mut passes = std::collections::BTreeSet::new();
    for line in &statements {
        let span = &line["span"];
        assert_eq!(span["name"], "pass", "{line}");
        assert_eq!(span["pool"], pool_name.as_str(), "{line}");
        assert_eq!(span["step"], line["fields"]["step"], "{line}");
        passes.insert(span["pass"].as_u64().expect("a pass number"));
    }
    assert_eq!(
        passes.len(),
        2,
        "the statements of the two passes carry two pass numbers: {passes:?}"
    );
}
