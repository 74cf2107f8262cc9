// SqliteStore's BaseBackend primitives (get/set/incr/expire and the sorted set): Redis-like
// keys emulated on the rl_keys / rl_key_members tables, so a Python algorithm written against
// BaseBackend runs on SQLite. The limiter state lives in sqlite_store.cpp.
#include <charconv>
#include <optional>
#include <string>

#include "ratelimiter/store/sqlite_store.hpp"
#include "sqlite_connection.hpp"
#include "sqlite_lease.hpp"

namespace ratelimiter {

namespace {

// Kinds of primitive keys in rl_keys.
constexpr std::int64_t kString = 0;
constexpr std::int64_t kSortedSet = 1;


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
