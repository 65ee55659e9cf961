//! The SQL password never reaches a log line, at any level. In a test binary of its own, with a
//! global subscriber installed before anything logs: a scoped subscriber races with other
//! tests' threads registering the same callsites, and then may see nothing.

use std::time::Duration;

use pchat_sql::testing::*;

#[tokio::test]
async fn the_sql_password_appears_in_no_log_line_at_any_level() {
    let buf = LogBuffer::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let mut live = start("password").await;
    live.converge(Duration::from_secs(60)).await;
    let text = buf.text();
    assert!(text.contains("running statement"), "the logs were captured");
    assert!(
        !text.contains(PASSWORD),
        "the password leaked into the logs"
    );
}
