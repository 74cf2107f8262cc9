#include "ratelimiter/store/sqlite_store.hpp"

#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "sqlite_connection.hpp"

namespace ratelimiter {
namespace {

// Names that open a private in-memory database rather than a file.
bool names_memory_database(const std::string& path) {
    return path.empty() || path == ":memory:" || path.rfind("file::memory:", 0) == 0 ||
           path.find("mode=memory") != std::string::npos;
}

// Kinds of primitive keys in rl_keys.
constexpr std::int64_t kString = 0;
constexpr std::int64_t kSortedSet = 1;

}  // namespace

// Holds the store's mutex (waiting at most ~busy_timeout, so a stuck holder gives an error
// rather than a hang) and yields the connection, reopening it in a forked child.
class SqliteStore::Lease {
public:
    explicit Lease(SqliteStore& store) : store_(store), lock_(store.mutex_, std::defer_lock) {
        // The holder waits at most busy_timeout on SQLite itself; the margin covers its step.
        const auto wait = store.options_.busy_timeout + std::chrono::milliseconds(1000);
        if (!lock_.try_lock_for(wait)) {
            throw BackendError("SQLite database '" + store.path_ +
                               "': timed out waiting for its connection, held by another "
                               "thread of this process");
        }
        if (store.closed_) throw BackendError("SQLite database '" + store.path_ + "' is closed");
        const pid_t pid = getpid();
        if (store.owner_pid_ != pid) {
            // A connection inherited through fork() must never be used (SQLite's locks are
            // per process) nor closed (closing could disturb the parent's): abandon it. An
            // in-memory database was copied with the process and is still private: keep it.
            if (!store.in_memory_) (void)store.connection_.release();
            store.owner_pid_ = pid;
        }
        if (!store.connection_) {
            store.connection_ =
                std::make_unique<SqliteConnection>(store.path_, store.options_, store.in_memory_);
        }
    }
    SqliteConnection& connection() { return *store_.connection_; }

private:
    SqliteStore& store_;
    std::unique_lock<std::timed_mutex> lock_;
};

SqliteStore::SqliteStore(std::string path, Options options)
    : path_(std::move(path)),
      options_(options),
      in_memory_(names_memory_database(path_)),
      owner_pid_(getpid()) {
    // Open now, so a bad path or permission fails at construction, not on the first request.
    connection_ = std::make_unique<SqliteConnection>(path_, options_, in_memory_);
}

SqliteStore::~SqliteStore() {
    if (owner_pid_ != getpid() && !in_memory_) (void)connection_.release();  // see Lease
}

void SqliteStore::close() {
    std::unique_lock<std::timed_mutex> lock(mutex_, std::defer_lock);
    if (!lock.try_lock_for(options_.busy_timeout + std::chrono::milliseconds(1000))) {
        throw BackendError("SQLite database '" + path_ +
                           "': timed out waiting for its connection to close it");
    }
    if (owner_pid_ != getpid() && !in_memory_) (void)connection_.release();
    connection_.reset();
    closed_ = true;
}

bool SqliteStore::ping() {
    try {
        Lease lease(*this);
        return Statement(lease.connection(), Sql::ping).step("ping");
    } catch (const BackendError&) {
        return false;
    }
}

void SqliteStore::throw_corrupt(std::string_view algo_name, std::string_view key) {
    throw BackendError("corrupt rate-limit state for " + std::string(algo_name) + " key '" +
                       std::string(key) + "' in SQLite (reset() the key to start it afresh)");
}

// ---- limiter state ----------------------------------------------------------------------

namespace {

// Reads the state row (if any) into c.decoded; false when absent. The blob may be unaligned
// inside SQLite's page buffer, hence the copy.
bool read_row(Statement& select, SqliteConnection& c, std::string_view key,
              std::string_view during) {
    if (!select.step(during)) return false;
    const auto [data, bytes] = select.column_blob(0);
    if (bytes % sizeof(double) != 0) {
        throw BackendError("corrupt rate-limit state for key '" + std::string(key) +
                           "' in SQLite (blob of " + std::to_string(bytes) + " bytes)");
    }
    c.decoded.resize(bytes / sizeof(double));
    if (bytes != 0) std::memcpy(c.decoded.data(), data, bytes);
    return true;
}

}  // namespace

Decision SqliteStore::run_step(int algo, std::string_view key, double now, bool read_only,
                               const StepFn& step) {
    Lease lease(*this);
    SqliteConnection& c = lease.connection();
    StepOutcome& out = c.outcome;
    out.write = false;
    if (read_only) {  // a peek: one SELECT, WAL lets it run beside a writer
        Statement select(c, Sql::select_state);
        select.bind(1, std::int64_t{algo}).bind_text(2, key);
        const bool present = read_row(select, c, key, "reading state");
        return step(present, c.decoded.data(), present ? c.decoded.size() : 0, out);
    }
    Transaction txn(c, Transaction::Kind::write);
    bool present = false;
    {
        Statement select(c, Sql::select_state);
        select.bind(1, std::int64_t{algo}).bind_text(2, key);
        present = read_row(select, c, key, "reading state");
    }
    const Decision d = step(present, c.decoded.data(), present ? c.decoded.size() : 0, out);
    if (out.write) {
        Statement write(c, present ? Sql::update_state : Sql::insert_state);
        write.bind(1, std::int64_t{algo})
            .bind_text(2, key)
            .bind_blob(3, out.encoded.data(), out.encoded.size() * sizeof(double))
            .bind(4, out.fresh_at)
            .run("writing state");
        bool wrapped = false;
        if (++writes_ % kPruneEvery == 0) prune_state(c, now, wrapped);
    }
    txn.commit();
    return d;
}

// run_step for several rows of one limiter key (MultiRateLimiter): all read, decided and
// written in one transaction, so the limits are committed all together or not at all.
void SqliteStore::run_multi(int algo, const std::vector<std::string>& keys, double now,
                            bool read_only, const MultiStepFn& step) {
    Lease lease(*this);
    SqliteConnection& c = lease.connection();
    thread_local std::vector<StoredRow> rows;
    thread_local std::vector<StepOutcome> outcomes;
    rows.resize(keys.size());
    outcomes.resize(keys.size());
    const auto read_all = [&] {
        for (std::size_t i = 0; i < keys.size(); ++i) {
            Statement select(c, Sql::select_state);
            select.bind(1, std::int64_t{algo}).bind_text(2, keys[i]);
            rows[i].present = read_row(select, c, keys[i], "reading state");
            if (rows[i].present) {
                rows[i].data.assign(c.decoded.begin(), c.decoded.end());
            } else {
                rows[i].data.clear();
            }
            outcomes[i].write = false;
        }
    };
    if (read_only) {
        read_all();
        step(rows, outcomes);
        return;
    }
    Transaction txn(c, Transaction::Kind::write);
    read_all();
    step(rows, outcomes);
    bool prune = false;  // after every write: a pass could delete a row still to be updated
    for (std::size_t i = 0; i < keys.size(); ++i) {
        if (!outcomes[i].write) continue;
        Statement write(c, rows[i].present ? Sql::update_state : Sql::insert_state);
        write.bind(1, std::int64_t{algo})
            .bind_text(2, keys[i])
            .bind_blob(3, outcomes[i].encoded.data(), outcomes[i].encoded.size() * sizeof(double))
            .bind(4, outcomes[i].fresh_at)
            .run("writing state");
        prune = prune || ++writes_ % kPruneEvery == 0;
    }
    if (prune) {
        bool wrapped = false;
        prune_state(c, now, wrapped);
    }
    txn.commit();
}

bool SqliteStore::erase_state(int algo, std::string_view key) {
    Lease lease(*this);
    Statement erase(lease.connection(), Sql::delete_state);
    return erase.bind(1, std::int64_t{algo}).bind_text(2, key).run("deleting state") > 0;
}

std::vector<double> SqliteStore::read_state(int algo, std::string_view key) {
    Lease lease(*this);
    SqliteConnection& c = lease.connection();
    Statement select(c, Sql::select_state);
    select.bind(1, std::int64_t{algo}).bind_text(2, key);
    if (!read_row(select, c, key, "reading state")) return {};
    return c.decoded;
}

std::size_t SqliteStore::prune_state(SqliteConnection& c, double now, bool& wrapped) {
    std::optional<std::pair<std::int64_t, std::string>> end;
    {
        Statement find(c, Sql::prune_state_end);
        find.bind(1, sweep_algo_).bind_text(2, sweep_key_);
        if (find.step("pruning expired state")) {
            end.emplace(find.column_int(0), std::string(find.column_text(1)));
        }
    }
    std::int64_t deleted = 0;
    if (end) {
        deleted = Statement(c, Sql::prune_state_range)
                      .bind(1, sweep_algo_)
                      .bind_text(2, sweep_key_)
                      .bind(3, end->first)
                      .bind_text(4, end->second)
                      .bind(5, now)
                      .run("pruning expired state");
        sweep_algo_ = end->first;
        sweep_key_ = std::move(end->second);
    } else {  // fewer than a batch left: finish the table and start over
        deleted = Statement(c, Sql::prune_state_tail)
                      .bind(1, sweep_algo_)
                      .bind_text(2, sweep_key_)
                      .bind(3, now)
                      .run("pruning expired state");
        sweep_algo_ = -1;
        sweep_key_.clear();
        wrapped = true;
    }
    return static_cast<std::size_t>(deleted);
}

std::size_t SqliteStore::prune_keys(SqliteConnection& c, double now) {
    Statement(c, Sql::prune_key_members).bind(1, now).run("pruning expired keys");
    return static_cast<std::size_t>(
        Statement(c, Sql::prune_keys).bind(1, now).run("pruning expired keys"));
}

std::size_t SqliteStore::size() {
    Lease lease(*this);
    Statement count(lease.connection(), Sql::count_state);
    count.step("counting state rows");
    return static_cast<std::size_t>(count.column_int(0));
}

std::size_t SqliteStore::purge_expired(double now) {
    // One transaction (and one hold of the connection) per batch, so other threads and
    // processes are never blocked for long.
    std::size_t total = 0;
    bool started = false;
    for (bool wrapped = false; !wrapped;) {
        Lease lease(*this);
        SqliteConnection& c = lease.connection();
        if (!started) {  // sweep the whole table from its start
            sweep_algo_ = -1;
            sweep_key_.clear();
            started = true;
        }
        Transaction txn(c, Transaction::Kind::write);
        total += prune_state(c, now, wrapped);
        txn.commit();
    }
    for (;;) {
        Lease lease(*this);
        SqliteConnection& c = lease.connection();
        Transaction txn(c, Transaction::Kind::write);
        const std::size_t keys = prune_keys(c, now);
        txn.commit();
        total += keys;
        if (keys < static_cast<std::size_t>(kPruneBatch)) return total;
    }
}

// ---- BaseBackend primitives ---------------------------------------------------------------

namespace {

struct KeyRow {
    bool present = false;  // a row exists (possibly expired)
    bool alive = false;    // present and not expired at `now`
    std::int64_t kind = kString;
    std::string value;
    std::optional<double> expires_at;
};

KeyRow read_key(SqliteConnection& c, std::string_view key, double now, bool want_value) {
    Statement select(c, Sql::select_key);
    select.bind_text(1, key);
    KeyRow row;
    if (!select.step("reading a key")) return row;
    row.present = true;
    row.kind = select.column_int(0);
    if (!select.column_is_null(2)) row.expires_at = select.column_double(2);
    row.alive = !row.expires_at || *row.expires_at > now;
    if (want_value && row.alive && !select.column_is_null(1)) row.value = select.column_text(1);
    return row;
}

void delete_key(SqliteConnection& c, std::string_view key) {
    Statement(c, Sql::delete_members).bind_text(1, key).run("deleting a key");
    Statement(c, Sql::delete_key).bind_text(1, key).run("deleting a key");
}

void write_key(SqliteConnection& c, std::string_view key, std::int64_t kind,
               const std::optional<std::string_view>& value, std::optional<double> expires_at) {
    Statement upsert(c, Sql::upsert_key);
    upsert.bind_text(1, key).bind(2, kind);
    if (value) {
        upsert.bind_text(3, *value);
    } else {
        upsert.bind_null(3);
    }
    if (expires_at) {
        upsert.bind(4, *expires_at);
    } else {
        upsert.bind_null(4);
    }
    upsert.run("writing a key");
}

[[noreturn]] void wrong_type(std::string_view key, const char* expected) {
    throw WrongTypeError("value at '" + std::string(key) + "' is not " + expected);
}

std::int64_t parse_integer(std::string_view text, std::string_view key) {
    std::int64_t value = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end) wrong_type(key, "an integer");
    return value;
}

}  // namespace

std::optional<std::string> SqliteStore::get(std::string_view key, double now) {
    Lease lease(*this);
    KeyRow row = read_key(lease.connection(), key, now, true);
    if (!row.alive) return std::nullopt;
    if (row.kind != kString) wrong_type(key, "a plain value (it is a sorted set)");
    return std::move(row.value);
}

void SqliteStore::set(std::string_view key, std::string_view value, std::optional<double> ttl,
                      double now) {
    Lease lease(*this);
    SqliteConnection& c = lease.connection();
    Transaction txn(c, Transaction::Kind::write);
    // Setting replaces any value, a sorted set included (as Redis SET does).
    Statement(c, Sql::delete_members).bind_text(1, key).run("writing a key");
    write_key(c, key, kString, value, ttl ? std::optional<double>(now + *ttl) : std::nullopt);
    if (++key_writes_ % kPruneEvery == 0) prune_keys(c, now);
    txn.commit();
}

bool SqliteStore::del(std::string_view key) {
    Lease lease(*this);
    SqliteConnection& c = lease.connection();
    Transaction txn(c, Transaction::Kind::write);
    const bool existed = read_key(c, key, 0.0, false).present;
    if (existed) delete_key(c, key);
    txn.commit();
    return existed;
}

std::int64_t SqliteStore::incr(std::string_view key, std::int64_t amount, double now) {
    Lease lease(*this);
    SqliteConnection& c = lease.connection();
    Transaction txn(c, Transaction::Kind::write);
    const KeyRow row = read_key(c, key, now, true);
    std::int64_t current = 0;
    if (row.alive) {
        if (row.kind != kString) wrong_type(key, "an integer (it is a sorted set)");
        current = parse_integer(row.value, key);
    } else if (row.present) {
        delete_key(c, key);  // expired: counts from 0 with no TTL
    }
    std::int64_t next = 0;
    if (__builtin_add_overflow(current, amount, &next)) {
        throw std::overflow_error("incr of '" + std::string(key) + "' would overflow int64");
    }
    const std::string text = std::to_string(next);
    // INCR keeps the key's TTL.
    write_key(c, key, kString, text, row.alive ? row.expires_at : std::nullopt);
    txn.commit();
    return next;
}

bool SqliteStore::expire(std::string_view key, double ttl, double now) {
    Lease lease(*this);
    SqliteConnection& c = lease.connection();
    Transaction txn(c, Transaction::Kind::write);
    const bool alive = read_key(c, key, now, false).alive;
    if (alive) {
        Statement(c, Sql::set_key_expiry).bind_text(1, key).bind(2, now + ttl).run("expire");
    }
    txn.commit();
    return alive;
}

void SqliteStore::zadd(std::string_view key, double score, std::string_view member, double now) {
    Lease lease(*this);
    SqliteConnection& c = lease.connection();
    Transaction txn(c, Transaction::Kind::write);
    const KeyRow row = read_key(c, key, now, false);
    if (row.alive && row.kind != kSortedSet) wrong_type(key, "a sorted set");
    if (!row.alive) {
        if (row.present) delete_key(c, key);
        // Members left by a key pruned in an earlier batch must not reappear.
        Statement(c, Sql::delete_members).bind_text(1, key).run("zadd");
        write_key(c, key, kSortedSet, std::nullopt, std::nullopt);
    }
    Statement(c, Sql::upsert_member).bind_text(1, key).bind_text(2, member).bind(3, score).run(
        "zadd");
    if (++key_writes_ % kPruneEvery == 0) prune_keys(c, now);
    txn.commit();
}

std::int64_t SqliteStore::zremrangebyscore(std::string_view key, double min, double max,
                                           double now) {
    Lease lease(*this);
    SqliteConnection& c = lease.connection();
    Transaction txn(c, Transaction::Kind::write);
    const KeyRow row = read_key(c, key, now, false);
    if (!row.alive) return 0;
    if (row.kind != kSortedSet) wrong_type(key, "a sorted set");
    const std::int64_t removed = Statement(c, Sql::remove_members_in_range)
                                     .bind_text(1, key)
                                     .bind(2, min)
                                     .bind(3, max)
                                     .run("zremrangebyscore");
    if (removed > 0) {
        Statement count(c, Sql::count_members);
        count.bind_text(1, key).step("zremrangebyscore");
        // An emptied sorted set disappears, as in Redis.
        if (count.column_int(0) == 0) {
            Statement(c, Sql::delete_key).bind_text(1, key).run("zremrangebyscore");
        }
    }
    txn.commit();
    return removed;
}

std::int64_t SqliteStore::zcard(std::string_view key, double now) {
    Lease lease(*this);
    SqliteConnection& c = lease.connection();
    Transaction txn(c, Transaction::Kind::read);
    const KeyRow row = read_key(c, key, now, false);
    std::int64_t n = 0;
    if (row.alive) {
        if (row.kind != kSortedSet) wrong_type(key, "a sorted set");
        Statement count(c, Sql::count_members);
        count.bind_text(1, key).step("zcard");
        n = count.column_int(0);
    }
    txn.commit();
    return n;
}

std::vector<std::pair<std::string, double>> SqliteStore::zrange_by_score(std::string_view key,
                                                                         double min, double max,
                                                                         double now) {
    Lease lease(*this);
    SqliteConnection& c = lease.connection();
    Transaction txn(c, Transaction::Kind::read);
    const KeyRow row = read_key(c, key, now, false);
    std::vector<std::pair<std::string, double>> out;
    if (row.alive) {
        if (row.kind != kSortedSet) wrong_type(key, "a sorted set");
        Statement range(c, Sql::members_in_range);
        range.bind_text(1, key).bind(2, min).bind(3, max);
        while (range.step("zrange_by_score")) {
            out.emplace_back(std::string(range.column_text(0)), range.column_double(1));
        }
    }
    txn.commit();
    return out;
}

}  // namespace ratelimiter
