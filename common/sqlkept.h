/* sqlkept.h - SQLite statements prepared once per connection and kept.
 *
 * A hot path's SQL (a lookup per request, a transaction's BEGIN and
 * COMMIT) is parsed on first use (SQLITE_PREPARE_PERSISTENT) and reused
 * after, instead of prepared and finalized on every call.  The caller owns
 * the slot and finalizes it before closing the connection; a connection is
 * used by one thread at a time, as SQLite requires anyway.
 *
 * Header-only: common/ does not link SQLite; its users do. */
#ifndef SLORAG_SQLKEPT_H
#define SLORAG_SQLKEPT_H

#include <sqlite3.h>
#include <stdbool.h>

/* The statement in *slot, prepared from sql on first use, reset and ready
 * to bind; NULL when it cannot be prepared. */
static inline sqlite3_stmt *sql_kept(sqlite3 *db, sqlite3_stmt **slot, const char *sql) {
    if (!*slot && sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK) {
        sqlite3_finalize(*slot);
        *slot = NULL;
    }
    if (*slot)
        sqlite3_reset(*slot);
    return *slot;
}

/* Runs a kept statement that returns no rows (BEGIN, COMMIT, ROLLBACK);
 * true when it completed. */
static inline bool sql_kept_exec(sqlite3 *db, sqlite3_stmt **slot, const char *sql) {
    sqlite3_stmt *st = sql_kept(db, slot, sql);
    bool ok = st && sqlite3_step(st) == SQLITE_DONE;
    if (st)
        sqlite3_reset(st);
    return ok;
}

#endif
