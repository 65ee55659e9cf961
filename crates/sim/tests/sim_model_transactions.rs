//! User transactions in the model: BEGIN/COMMIT/ROLLBACK TRAN, @@TRANCOUNT, implicit
//! transactions, the statements SQL Server refuses inside a transaction, what COMMIT writes
//! and what ROLLBACK undoes, and transaction-manager requests through the backend seam.

mod support;

use pchat_sim::backend::{Outcome, Output, TransactionChange, TransactionRequest, Value};
use support::model::*;
use tokio_util::sync::CancellationToken;

fn trancount(o: &Outcome) -> i32 {
    let sets = result_sets(o);
    match sets.last().and_then(|s| s.rows.first()).map(|r| &r[0]) {
        Some(Value::Int(n)) => *n,
        other => panic!("@@TRANCOUNT result: {other:?} in {o:?}"),
    }
}

fn changes(o: &Outcome) -> Vec<TransactionChange> {
    o.outputs
        .iter()
        .filter_map(|x| match x {
            Output::TransactionChanged(c) => Some(*c),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn trancount_counts_nested_begins_and_commit_takes_one_level() {
    let w = world("tx-nest");
    let c = w.connect_direct("atl-sql1");
    assert_eq!(trancount(&c.exec("SELECT @@TRANCOUNT").await), 0);
    let o = c
        .exec("BEGIN TRAN; BEGIN TRANSACTION inner_tx; SELECT @@TRANCOUNT")
        .await;
    assert_eq!(trancount(&o), 2);
    // Only the outermost BEGIN tells the client a descriptor.
    assert!(
        matches!(changes(&o)[..], [TransactionChange::Began { descriptor }] if descriptor != 0)
    );
    let o = c.exec("COMMIT; SELECT @@TRANCOUNT").await;
    assert_eq!(trancount(&o), 1);
    assert!(changes(&o).is_empty());
    let o = c.exec("COMMIT TRAN; SELECT @@TRANCOUNT").await;
    assert_eq!(trancount(&o), 0);
    assert!(matches!(
        changes(&o)[..],
        [TransactionChange::Committed { .. }]
    ));
}

#[tokio::test]
async fn commit_without_begin_is_error_3902_and_rollback_without_begin_is_3903() {
    let w = world("tx-nobegin");
    let c = w.connect_direct("atl-sql1");
    let o = c.exec("COMMIT").await;
    assert_eq!(errors(&o), vec![3902]);
    assert_eq!(
        error_texts(&o),
        vec!["The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION."]
    );
    let o = c.exec("ROLLBACK TRANSACTION").await;
    assert_eq!(errors(&o), vec![3903]);
}

#[tokio::test]
async fn rollback_ends_every_level_and_discards_the_inserted_messages() {
    let w = world("tx-rollback");
    let c = w.connect_direct("atl-sql1");
    c.post("mgc", [1]).await;
    let o = c.exec("BEGIN TRAN; BEGIN TRAN; INSERT INTO mgc.dbo.Messages (MessageId) VALUES (2); INSERT INTO mgc.dbo.Messages (MessageId) VALUES (3)").await;
    assert!(errors(&o).is_empty(), "{o:?}");
    // Uncommitted rows are not in the database: other sessions do not see them.
    assert_eq!(w.sim.message_ids("atl-sql1", "mgc").unwrap(), vec![1]);
    let o = c.exec("ROLLBACK; SELECT @@TRANCOUNT").await;
    assert_eq!(trancount(&o), 0);
    assert!(matches!(
        changes(&o)[..],
        [TransactionChange::RolledBack { .. }]
    ));
    assert_eq!(w.sim.message_ids("atl-sql1", "mgc").unwrap(), vec![1]);
}

#[tokio::test]
async fn commit_writes_the_messages_inserted_in_the_transaction() {
    let w = world("tx-commit");
    let c = w.connect_direct("atl-sql1");
    let o = c.exec("BEGIN TRAN INSERT INTO mgc.dbo.Messages (MessageId) VALUES (5) INSERT INTO mgc.dbo.Messages (MessageId) VALUES (6)").await;
    assert!(errors(&o).is_empty(), "{o:?}");
    assert_eq!(
        w.sim.message_ids("atl-sql1", "mgc").unwrap(),
        Vec::<i64>::new()
    );
    // A duplicate of a pending row is refused like a duplicate of a committed one.
    let o = c
        .exec("INSERT INTO mgc.dbo.Messages (MessageId) VALUES (5)")
        .await;
    assert_eq!(errors(&o), vec![2627]);
    let o = c.exec("COMMIT").await;
    assert!(errors(&o).is_empty(), "{o:?}");
    assert_eq!(w.sim.message_ids("atl-sql1", "mgc").unwrap(), vec![5, 6]);
}

#[tokio::test]
async fn backup_restore_and_database_ddl_are_refused_inside_a_transaction() {
    let w = world("tx-refused");
    let c = w.connect_direct("atl-sql1");
    c.exec("BEGIN TRAN").await;
    let cases = [
        (
            "BACKUP DATABASE mgc TO DISK = N'\\\\atl-fs\\pchat-ls\\tx.bak'",
            3021,
        ),
        (
            "RESTORE DATABASE mgc FROM DISK = N'\\\\atl-fs\\pchat-ls\\tx.bak'",
            3021,
        ),
        ("ALTER DATABASE mgc SET RECOVERY SIMPLE", 226),
        ("CREATE DATABASE txdb", 226),
        ("DROP DATABASE mgc", 226),
    ];
    for (sql, number) in cases {
        let o = c.exec(sql).await;
        assert_eq!(errors(&o), vec![number], "{sql}");
    }
    let o = c.exec("ALTER DATABASE mgc SET RECOVERY SIMPLE").await;
    assert_eq!(
        error_texts(&o),
        vec!["ALTER DATABASE statement not allowed within multi-statement transaction."]
    );
    // The transaction is still open, and after it the statements run.
    let o = c.exec("SELECT @@TRANCOUNT").await;
    assert_eq!(trancount(&o), 1);
    c.exec("ROLLBACK").await;
    let o = c.exec("CREATE DATABASE txdb").await;
    assert!(errors(&o).is_empty(), "{o:?}");
}

#[tokio::test]
async fn implicit_transactions_begin_one_at_the_first_insert() {
    let w = world("tx-implicit");
    let c = w.connect_direct("atl-sql1");
    let o = c
        .exec("SET IMPLICIT_TRANSACTIONS ON; INSERT INTO mgc.dbo.Messages (MessageId) VALUES (9); SELECT @@TRANCOUNT")
        .await;
    assert_eq!(trancount(&o), 1);
    assert!(matches!(changes(&o)[..], [TransactionChange::Began { .. }]));
    c.exec("ROLLBACK; SET IMPLICIT_TRANSACTIONS OFF").await;
    assert_eq!(
        w.sim.message_ids("atl-sql1", "mgc").unwrap(),
        Vec::<i64>::new()
    );
}

#[tokio::test]
async fn transaction_manager_commit_with_begin_next_commits_and_opens_the_next() {
    let w = world("tx-tm");
    let c = w.connect_direct("atl-sql1");
    let tm = |request| {
        c.backend
            .transaction(&c.session, request, CancellationToken::new())
    };
    let o = tm(TransactionRequest::Begin).await;
    let [TransactionChange::Began { descriptor: first }] = changes(&o)[..] else {
        panic!("{o:?}")
    };
    c.exec("INSERT INTO mgc.dbo.Messages (MessageId) VALUES (11)")
        .await;
    let o = tm(TransactionRequest::Commit { begin_next: true }).await;
    let [
        TransactionChange::Committed { descriptor: done },
        TransactionChange::Began { descriptor: next },
    ] = changes(&o)[..]
    else {
        panic!("{o:?}")
    };
    assert_eq!(done, first);
    assert_ne!(next, first);
    assert_eq!(w.sim.message_ids("atl-sql1", "mgc").unwrap(), vec![11]);
    let o = tm(TransactionRequest::Rollback { begin_next: false }).await;
    assert!(
        matches!(changes(&o)[..], [TransactionChange::RolledBack { descriptor }] if descriptor == next)
    );
    let o = tm(TransactionRequest::Rollback { begin_next: false }).await;
    assert_eq!(errors(&o), vec![3903]);
}
