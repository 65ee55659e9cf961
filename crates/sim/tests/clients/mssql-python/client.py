"""A client of the simulator on Microsoft's mssql-python (which bundles the ODBC Driver 18),
run by the Rust test sim_client_mssql_python. Default mode (autocommit off: the driver begins
a transaction with a TDS transaction-manager request right after login). It logs in, runs a
query, provokes an error, commits one transaction and rolls back another, and prints one JSON
object per step; it stops at the first step that fails.

usage: client.py CONNECTION_STRING
"""

import json
import re
import sys

import mssql_python


def emit(**fields):
    print(json.dumps(fields), flush=True)


def scalar(cursor, sql):
    cursor.execute(sql)
    return cursor.fetchone()[0]


def insert_message(cursor, message_id):
    cursor.execute(
        "INSERT INTO mgc.dbo.Messages (MessageId, ChatServer, Body, PostedAt) "
        f"VALUES ({message_id}, N'mssql-python', N'from a transaction', SYSUTCDATETIME())"
    )


def error_number(error):
    """The SQL Server error number, where the exception carries one. mssql-python 1.16's
    exceptions carry the SQLSTATE's description (driver_error) and the server's text
    (ddbc_error) but not the native error number: then None."""
    for attr in ("number", "native_error", "sql_error_number"):
        value = getattr(error, attr, None)
        if isinstance(value, int):
            return value
    match = re.search(r"\((\d+)\)", str(error))
    return int(match.group(1)) if match else None


def main():
    connection = mssql_python.connect(sys.argv[1])
    emit(step="connect", ok=True, autocommit=connection.autocommit)
    cursor = connection.cursor()

    emit(step="query", ok=True, server=scalar(cursor, "SELECT @@SERVERNAME"),
         trancount=scalar(cursor, "SELECT @@TRANCOUNT"))

    try:
        cursor.execute("SELECT * FROM dbo.NoSuchTable")
        emit(step="error", ok=False, error="no error raised")
        return 1
    except mssql_python.Error as error:
        emit(step="error", ok=True, number=error_number(error),
             driver_error=getattr(error, "driver_error", None),
             server_text=getattr(error, "ddbc_error", None), type=type(error).__name__,
             diag=[list(map(str, r)) for r in cursor.messages])

    insert_message(cursor, 2001)
    trancount = scalar(cursor, "SELECT @@TRANCOUNT")
    connection.commit()
    emit(step="commit", ok=True, trancount=trancount)

    insert_message(cursor, 2002)
    trancount = scalar(cursor, "SELECT @@TRANCOUNT")
    connection.rollback()
    emit(step="rollback", ok=True, trancount=trancount)

    cursor.execute(
        "SELECT MessageId FROM mgc.dbo.Messages WHERE MessageId IN (2001, 2002) ORDER BY MessageId"
    )
    emit(step="after", ok=True, ids=[row[0] for row in cursor.fetchall()])
    connection.rollback()
    connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
