// One SQLite connection of a SqliteStore: opening (pragmas, schema, permission checks), the
// prepared statements it reuses, transactions, and the mapping of SQLite errors to
// BackendError messages that name the file and the likely cause. Private to cpp/src.
#pragma once

#include <sqlite3.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ratelimiter/store/sqlite_store.hpp"

namespace ratelimiter {

// Every statement the store runs, prepared once per connection on first use.
enum class Sql : std::size_t {
    begin_immediate,
    begin_read,
    commit,
    ping,
    select_state,
    insert_state,
    update_state,
    delete_state,
    prune_state_end,
    prune_state_range,
    prune_state_tail,
    count_state,
    select_key,
    upsert_key,
    delete_key,
    set_key_expiry,
    delete_members,
    upsert_member,
    remove_members_in_range,
    count_members,
    members_in_range,
    prune_key_members,
    prune_keys,
    // The sliding-window log's rows (SqliteStore::apply_sliding_log).
    log_rows_after,
    log_row_at_cum,
    log_upsert_row,
    log_trim,
    log_rebase,
    log_delete_all,
    log_bump_id,
    log_read_id,
    log_expired_heads,
    log_mark_dead,
    log_first_dead,
    log_unmark_dead,
    log_row_at_or_before,
    log_delete_from,
    count_,  // number of statements
};

class SqliteConnection {
public:
    SqliteConnection(const std::string& path, const SqliteStore::Options& options,
                     bool in_memory);
    SqliteConnection(const SqliteConnection&) = delete;
    SqliteConnection& operator=(const SqliteConnection&) = delete;
    ~SqliteConnection();

    sqlite3_stmt* statement(Sql id);
    sqlite3* db() const { return db_; }
    // Throws the BackendError (or BackendConnectionError) describing `rc`.
    [[noreturn]] void fail(int rc, std::string_view during) const;

    // Reused by the limiter-state path so a warm decision allocates nothing.
    std::vector<double> decoded;
    SqliteStore::StepOutcome outcome;

private:
    void exec(const char* sql, std::string_view during);
    void configure(const SqliteStore::Options& options, bool in_memory);

    sqlite3* db_ = nullptr;
    std::string path_;
    std::int64_t busy_timeout_ms_;
    std::array<sqlite3_stmt*, static_cast<std::size_t>(Sql::count_)> statements_{};
};

// A borrowed prepared statement: binds, steps, and resets on scope exit so it can be reused.
class Statement {
public:
    Statement(SqliteConnection& c, Sql id) : c_(c), stmt_(c.statement(id)) {}
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    ~Statement() { sqlite3_reset(stmt_); }

    Statement& bind(int i, std::int64_t v);
    Statement& bind(int i, double v);
    Statement& bind_text(int i, std::string_view v);  // borrowed: must outlive the step
    Statement& bind_blob(int i, const void* data, std::size_t bytes);
    Statement& bind_null(int i);

    // True for a row, false when done; anything else throws.
    bool step(std::string_view during);
    // Steps a statement that returns no row; returns sqlite3_changes().
    std::int64_t run(std::string_view during);

    std::int64_t column_int(int i) const { return sqlite3_column_int64(stmt_, i); }
    double column_double(int i) const { return sqlite3_column_double(stmt_, i); }
    bool column_is_null(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }
    std::string_view column_text(int i) const;
    // The column's bytes; (nullptr, 0) for an empty blob.
    std::pair<const void*, std::size_t> column_blob(int i) const;

private:
    SqliteConnection& c_;
    sqlite3_stmt* stmt_;
};

// BEGIN IMMEDIATE (or a deferred BEGIN for reads) ... COMMIT; rolls back unless committed.
class Transaction {
public:
    enum class Kind { write, read };
    Transaction(SqliteConnection& c, Kind kind);
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    ~Transaction();
    void commit();

private:
    SqliteConnection& c_;
    bool open_ = true;
};

}  // namespace ratelimiter
