// A client of the simulator written with Microsoft's Go driver (go-mssqldb), run by the
// Rust test sim_client_go_mssqldb. It logs in with the DSN it is given, runs a query, provokes
// an error, commits one transaction and rolls back another, and prints one JSON object per
// step on stdout for the test to check. It stops at the first step that fails.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	mssql "github.com/microsoft/go-mssqldb"
)

func emit(fields map[string]any) {
	line, _ := json.Marshal(fields)
	fmt.Println(string(line))
}

func fail(step string, err error) {
	emit(map[string]any{"step": step, "ok": false, "error": err.Error()})
	os.Exit(1)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go-mssqldb-client DSN")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("sqlserver", os.Args[1])
	if err != nil {
		fail("open", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	var server string
	if err := db.QueryRowContext(ctx, "SELECT @@SERVERNAME").Scan(&server); err != nil {
		fail("query", err)
	}
	emit(map[string]any{"step": "query", "ok": true, "server": server})

	_, err = db.ExecContext(ctx, "SELECT * FROM dbo.NoSuchTable")
	var sqlErr mssql.Error
	if !errors.As(err, &sqlErr) {
		fail("error", fmt.Errorf("expected a server error, got %v", err))
	}
	emit(map[string]any{"step": "error", "ok": true, "number": sqlErr.Number, "message": sqlErr.Message})

	if err := transaction(ctx, db, 1001, true); err != nil {
		fail("commit", err)
	}
	if err := transaction(ctx, db, 1002, false); err != nil {
		fail("rollback", err)
	}

	rows, err := db.QueryContext(ctx, "SELECT MessageId FROM mgc.dbo.Messages WHERE MessageId IN (1001, 1002) ORDER BY MessageId")
	if err != nil {
		fail("after", err)
	}
	ids := []int64{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			fail("after", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		fail("after", err)
	}
	emit(map[string]any{"step": "after", "ok": true, "ids": ids})
}

// transaction inserts message `id` in a transaction (database/sql's BeginTx, which the
// driver sends as a TDS transaction-manager request) and commits or rolls it back.
func transaction(ctx context.Context, db *sql.DB, id int64, commit bool) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO mgc.dbo.Messages (MessageId, ChatServer, Body, PostedAt) VALUES (@p1, N'go-mssqldb', N'from a transaction', SYSUTCDATETIME())", id)
	if err != nil {
		tx.Rollback()
		return fmt.Errorf("insert: %w", err)
	}
	var trancount int
	if err := tx.QueryRowContext(ctx, "SELECT @@TRANCOUNT").Scan(&trancount); err != nil {
		tx.Rollback()
		return fmt.Errorf("trancount: %w", err)
	}
	step := "rollback"
	if commit {
		step = "commit"
		err = tx.Commit()
	} else {
		err = tx.Rollback()
	}
	if err != nil {
		return err
	}
	emit(map[string]any{"step": step, "ok": true, "trancount": trancount})
	return nil
}
