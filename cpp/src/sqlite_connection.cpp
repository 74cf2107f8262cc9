#include "sqlite_connection.hpp"

#include <limits>

namespace ratelimiter {
namespace {

// Schema. WITHOUT ROWID: every lookup is by primary key, so rows live in the key's B-tree.
// rl_state has no index on expires_at: every decision rewrites expires_at, and an index
// would double the pages (WAL frames) each decision writes (measured: ~40% slower). It is
// pruned by a sweep along the primary key instead (SqliteStore::prune_state). Primitive
// keys, written rarely, keep a partial index for their pruning.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS rl_state(
    algo INTEGER NOT NULL,
    key TEXT NOT NULL,
    state BLOB NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY(algo, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rl_keys(
    key TEXT NOT NULL PRIMARY KEY,
    kind INTEGER NOT NULL,
    value TEXT,
    expires_at REAL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rl_keys_expires ON rl_keys(expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS rl_zset(
    key TEXT NOT NULL,
    member TEXT NOT NULL,
    score REAL NOT NULL,
    PRIMARY KEY(key, member)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rl_zset_score ON rl_zset(key, score);
CREATE TABLE IF NOT EXISTS rl_log(
    log_id INTEGER NOT NULL,
    t REAL NOT NULL,
    n INTEGER NOT NULL,
    cum INTEGER NOT NULL,
    PRIMARY KEY(log_id, t)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rl_log_cum ON rl_log(log_id, cum);
CREATE TABLE IF NOT EXISTS rl_log_dead(log_id INTEGER NOT NULL PRIMARY KEY);
CREATE TABLE IF NOT EXISTS rl_meta(name TEXT NOT NULL PRIMARY KEY, value INTEGER NOT NULL)
    WITHOUT ROWID;
)sql";

// Indexed by Sql. The prune statements delete at most SqliteStore::kPruneBatch rows.
constexpr std::array<const char*, static_cast<std::size_t>(Sql::count_)> kStatements = {
    "BEGIN IMMEDIATE",
    "BEGIN",
    "COMMIT",
    "SELECT 1",
    "SELECT state FROM rl_state WHERE algo = ?1 AND key = ?2",
    "INSERT INTO rl_state(algo, key, state, expires_at) VALUES(?1, ?2, ?3, ?4)",
    "UPDATE rl_state SET state = ?3, expires_at = ?4 WHERE algo = ?1 AND key = ?2",
    "DELETE FROM rl_state WHERE algo = ?1 AND key = ?2",
    // The sweep: the end of the next kPruneBatch rows after the cursor, then the expired rows
    // within (cursor, end] (or after the cursor, when fewer rows remain).
    "SELECT algo, key FROM rl_state WHERE (algo, key) > (?1, ?2) ORDER BY algo, key "
    "LIMIT 1 OFFSET 499",
    "DELETE FROM rl_state WHERE (algo, key) > (?1, ?2) AND (algo, key) <= (?3, ?4) "
    "AND expires_at <= ?5",
    "DELETE FROM rl_state WHERE (algo, key) > (?1, ?2) AND expires_at <= ?3",
    "SELECT count(*) FROM rl_state",
    "SELECT kind, value, expires_at FROM rl_keys WHERE key = ?1",
    "INSERT INTO rl_keys(key, kind, value, expires_at) VALUES(?1, ?2, ?3, ?4) "
    "ON CONFLICT(key) DO UPDATE SET kind = excluded.kind, value = excluded.value, "
    "expires_at = excluded.expires_at",
    "DELETE FROM rl_keys WHERE key = ?1",
    "UPDATE rl_keys SET expires_at = ?2 WHERE key = ?1",
    "DELETE FROM rl_zset WHERE key = ?1",
    "INSERT INTO rl_zset(key, member, score) VALUES(?1, ?2, ?3) "
    "ON CONFLICT(key, member) DO UPDATE SET score = excluded.score",
    "DELETE FROM rl_zset WHERE key = ?1 AND score >= ?2 AND score <= ?3",
    "SELECT count(*) FROM rl_zset WHERE key = ?1",
    "SELECT member, score FROM rl_zset WHERE key = ?1 AND score >= ?2 AND score <= ?3 "
    "ORDER BY score, member",
    // Members first, selecting the same keys the next statement deletes (same index order).
    "DELETE FROM rl_zset WHERE key IN "
    "(SELECT key FROM rl_keys WHERE expires_at <= ?1 LIMIT 500)",
    "DELETE FROM rl_keys WHERE key IN "
    "(SELECT key FROM rl_keys WHERE expires_at <= ?1 LIMIT 500)",
    // Sliding-window log rows (see sqlite_store.hpp). One bound on t, so the scan starts in
    // the index at the first candidate rather than at the oldest row kept.
    "SELECT t, n, cum FROM rl_log WHERE log_id = ?1 AND t > ?2 ORDER BY t",
    "SELECT t FROM rl_log WHERE log_id = ?1 AND cum >= ?2 ORDER BY cum LIMIT 1",
    "INSERT INTO rl_log(log_id, t, n, cum) VALUES(?1, ?2, ?3, ?4) "
    "ON CONFLICT(log_id, t) DO UPDATE SET n = excluded.n, cum = excluded.cum",
    "DELETE FROM rl_log WHERE log_id = ?1 AND t IN "
    "(SELECT t FROM rl_log WHERE log_id = ?1 AND t < ?2 ORDER BY t LIMIT ?3)",
    "UPDATE rl_log SET cum = cum - ?2 WHERE log_id = ?1",
    "DELETE FROM rl_log WHERE log_id = ?1",
    "INSERT INTO rl_meta(name, value) VALUES('log_id', 1) "
    "ON CONFLICT(name) DO UPDATE SET value = value + 1",
    "SELECT value FROM rl_meta WHERE name = 'log_id'",
    // The log heads the pruning sweep is about to delete in (cursor, end]; ?3 = NULL means
    // to the table's end. The algo literal is SqliteStore::kSlidingLogAlgo.
    "SELECT state FROM rl_state WHERE algo = 101 AND (algo, key) > (?1, ?2) "
    "AND (?3 IS NULL OR (algo, key) <= (?3, ?4)) AND expires_at <= ?5",
    "INSERT OR IGNORE INTO rl_log_dead(log_id) VALUES(?1)",
    "SELECT log_id FROM rl_log_dead ORDER BY log_id LIMIT 1",
    "DELETE FROM rl_log_dead WHERE log_id = ?1",
    // A clock glitch's re-base (apply_sliding_log): the newest row within the tolerance, and
    // the glitched rows (with any popped ones in their range) replaced by one merged row.
    "SELECT t, n, cum FROM rl_log WHERE log_id = ?1 AND t <= ?2 ORDER BY t DESC LIMIT 1",
    "DELETE FROM rl_log WHERE log_id = ?1 AND t >= ?2",
};
static_assert(SqliteStore::kSlidingLogAlgo == 101, "log_expired_heads hard-codes the algo");
static_assert(SqliteStore::kPruneBatch == 500, "the prune statements hard-code the batch");

const char* synchronous_pragma(SqliteStore::Synchronous s) {
    switch (s) {
        case SqliteStore::Synchronous::off: return "PRAGMA synchronous = OFF";
        case SqliteStore::Synchronous::normal: return "PRAGMA synchronous = NORMAL";
        case SqliteStore::Synchronous::full: return "PRAGMA synchronous = FULL";
        case SqliteStore::Synchronous::extra: return "PRAGMA synchronous = EXTRA";
    }
    return "PRAGMA synchronous = NORMAL";
}

int clamp_to_int(std::int64_t v) {
    return static_cast<int>(std::min<std::int64_t>(v, std::numeric_limits<int>::max()));
}

}  // namespace

SqliteConnection::SqliteConnection(const std::string& path, const SqliteStore::Options& options,
                                   bool in_memory)
    : path_(path), busy_timeout_ms_(options.busy_timeout.count()) {
    // NOMUTEX: the store serialises use of a connection itself. URI: accept "file:..." names.
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
#ifdef SQLITE_OPEN_EXRESCODE
    flags |= SQLITE_OPEN_EXRESCODE;
#endif
    const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        // Build the message before closing: fail() reads the handle's error text.
        try {
            fail(rc, "open");
        } catch (...) {
            sqlite3_close(db_);
            db_ = nullptr;
            throw;
        }
    }
    try {
        configure(options, in_memory);
    } catch (...) {
        sqlite3_close(db_);
        db_ = nullptr;
        throw;
    }
}

SqliteConnection::~SqliteConnection() {
    for (sqlite3_stmt* s : statements_) sqlite3_finalize(s);
    if (db_ != nullptr) sqlite3_close(db_);
}

void SqliteConnection::configure(const SqliteStore::Options& options, bool in_memory) {
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, clamp_to_int(busy_timeout_ms_));
    // SQLite silently opens a file it may not write read-only; say so now, not on the first
    // decision (as root this never triggers: root may write any file).
    if (!in_memory && sqlite3_db_readonly(db_, "main") == 1) fail(SQLITE_READONLY, "open");
    if (options.wal_mode && !in_memory) exec("PRAGMA journal_mode = WAL", "enabling WAL");
    exec(synchronous_pragma(options.synchronous), "setting synchronous");
    exec(kSchema, "creating the tables");
}

void SqliteConnection::exec(const char* sql, std::string_view during) {
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail(rc, during);
}

sqlite3_stmt* SqliteConnection::statement(Sql id) {
    sqlite3_stmt*& slot = statements_[static_cast<std::size_t>(id)];
    if (slot == nullptr) {
        const int rc = sqlite3_prepare_v3(db_, kStatements[static_cast<std::size_t>(id)], -1,
                                          SQLITE_PREPARE_PERSISTENT, &slot, nullptr);
        if (rc != SQLITE_OK) fail(rc, "preparing a statement");
    }
    return slot;
}

void SqliteConnection::fail(int rc, std::string_view during) const {
    const int primary = rc & 0xff;
    const std::string where = "SQLite database '" + path_ + "'";
    // The handle's message describes its last failed call, which is not always `rc`: the
    // read-only check at open fails no call, so errmsg would say "not an error".
    const bool handle_has_rc = db_ != nullptr && (sqlite3_errcode(db_) & 0xff) == primary;
    const std::string detail = handle_has_rc ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    switch (primary) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            throw BackendError(where + " is locked: another connection held it longer than "
                               "busy_timeout (" + std::to_string(busy_timeout_ms_) +
                               " ms) while " + std::string(during));
        case SQLITE_READONLY:
            throw BackendError(where + " is read-only (" + detail +
                               "): rate-limit state cannot be written; make the file, its "
                               "directory (for the -wal/-shm files) and any existing -wal/-shm "
                               "files writable by this process");
        case SQLITE_CANTOPEN:
            throw BackendConnectionError("cannot open " + where + " (" + detail +
                                         "): check that its directory exists and is writable "
                                         "by this process");
        case SQLITE_PERM:
        case SQLITE_AUTH:
            throw BackendError(where + ": permission denied while " + std::string(during) +
                               " (" + detail + ")");
        default:
            throw BackendError(where + ": " + std::string(during) + " failed: " + detail +
                               " (SQLite code " + std::to_string(rc) + ")");
    }
}

Statement& Statement::bind(int i, std::int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
}
Statement& Statement::bind(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
}
Statement& Statement::bind_text(int i, std::string_view v) {
    // A zero-length text still needs a non-null pointer, or SQLite binds NULL.
    sqlite3_bind_text64(stmt_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_STATIC,
                        SQLITE_UTF8);
    return *this;
}
Statement& Statement::bind_blob(int i, const void* data, std::size_t bytes) {
    if (bytes == 0) {
        sqlite3_bind_zeroblob(stmt_, i, 0);  // a null pointer would bind NULL
    } else {
        sqlite3_bind_blob64(stmt_, i, data, bytes, SQLITE_STATIC);
    }
    return *this;
}
Statement& Statement::bind_null(int i) {
    sqlite3_bind_null(stmt_, i);
    return *this;
}

bool Statement::step(std::string_view during) {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    c_.fail(rc, during);
}

std::int64_t Statement::run(std::string_view during) {
    while (step(during)) {
    }
    return sqlite3_changes64(c_.db());
}

std::string_view Statement::column_text(int i) const {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
    const int bytes = sqlite3_column_bytes(stmt_, i);
    if (text == nullptr) return {};
    return {text, static_cast<std::size_t>(bytes)};
}

std::pair<const void*, std::size_t> Statement::column_blob(int i) const {
    const void* data = sqlite3_column_blob(stmt_, i);
    const int bytes = sqlite3_column_bytes(stmt_, i);
    if (data == nullptr || bytes <= 0) return {nullptr, 0};
    return {data, static_cast<std::size_t>(bytes)};
}

Transaction::Transaction(SqliteConnection& c, Kind kind) : c_(c) {
    const bool write = kind == Kind::write;
    Statement(c_, write ? Sql::begin_immediate : Sql::begin_read)
        .run(write ? "starting a write transaction" : "starting a read transaction");
}

Transaction::~Transaction() {
    // After some errors (disk full, I/O) SQLite has already rolled back: check first.
    // sqlite3_exec, not a cached statement: preparing one could throw in a destructor.
    if (open_ && sqlite3_get_autocommit(c_.db()) == 0) {
        sqlite3_exec(c_.db(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
}

void Transaction::commit() {
    Statement(c_, Sql::commit).run("committing");
    open_ = false;
}

}  // namespace ratelimiter
