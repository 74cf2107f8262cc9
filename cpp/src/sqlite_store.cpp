#include "ratelimiter/store/sqlite_store.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "ratelimiter/algorithm/sliding_window.hpp"
#include "sqlite_connection.hpp"
#include "sqlite_lease.hpp"

namespace ratelimiter {
namespace {

// Names that open a private in-memory database rather than a file.
bool names_memory_database(const std::string& path) {
    return path.empty() || path == ":memory:" || path.rfind("file::memory:", 0) == 0 ||
           path.find("mode=memory") != std::string::npos;
}

}  // namespace

SqliteStore::SqliteStore(std::string path, Options options)
    : path_(std::move(path)),
      options_(options),
      policy_(options.on_error),
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

// ---- sliding-window log on rows (layout and migration: see sqlite_store.hpp) --------------

namespace {

constexpr auto kBlobLogAlgo = static_cast<std::int64_t>(SlidingWindow::id);
constexpr std::int64_t kLogHeadAlgo = SqliteStore::kSlidingLogAlgo;
// cum stays below 2^53 so it is exact as a double (the head stores doubles); a log nearing
// it is rebased (see apply_sliding_log).
constexpr double kMaxCum = 9007199254740992.0;

bool is_count(double v, double max) { return v >= 1.0 && v <= max && v == std::floor(v); }

// The head row of a log: rl_state(kSlidingLogAlgo, key) = [log_id, live_from, last_t,
// last_n, last_cum]. Entries at t < live_from were popped; (last_t, last_n, last_cum) is the
// newest entry.
struct LogHead {
    std::int64_t log_id = 0;
    double live_from = 0.0;
    double last_t = 0.0;
    double last_n = 0.0;
    double last_cum = 0.0;
};

enum class HeadRead { absent, valid, corrupt };

// Reads the head of `key`'s log, rejecting what apply_sliding_log could not have written.
HeadRead read_head(SqliteConnection& c, std::string_view key, LogHead& h) {
    Statement select(c, Sql::select_state);
    select.bind(1, kLogHeadAlgo).bind_text(2, key);
    if (!read_row(select, c, key, "reading state")) return HeadRead::absent;
    const std::vector<double>& d = c.decoded;
    if (d.size() != 5 || !is_count(d[0], kMaxCum) || !std::isfinite(d[1]) ||
        !std::isfinite(d[2]) || !(d[1] <= d[2]) ||
        !is_count(d[3], static_cast<double>(kMaxCount)) || !is_count(d[4], kMaxCum) ||
        d[4] < d[3]) {
        return HeadRead::corrupt;
    }
    h = LogHead{static_cast<std::int64_t>(d[0]), d[1], d[2], d[3], d[4]};
    return HeadRead::valid;
}

void write_head(SqliteConnection& c, std::string_view key, const LogHead& h, bool present,
                double expires_at) {
    const double encoded[5] = {static_cast<double>(h.log_id), h.live_from, h.last_t, h.last_n,
                               h.last_cum};
    Statement(c, present ? Sql::update_state : Sql::insert_state)
        .bind(1, kLogHeadAlgo)
        .bind_text(2, key)
        .bind_blob(3, encoded, sizeof encoded)
        .bind(4, expires_at)
        .run("writing state");
}

void upsert_entry(SqliteConnection& c, std::int64_t log_id, double t, double n, double cum) {
    Statement(c, Sql::log_upsert_row)
        .bind(1, log_id)
        .bind(2, t)
        .bind(3, static_cast<std::int64_t>(n))  // integers below 2^53: checked by the callers
        .bind(4, static_cast<std::int64_t>(cum))
        .run("writing the sliding log");
}

// A fresh log id: never reused, so rows of a pruned log awaiting deletion stay invisible.
std::int64_t next_log_id(SqliteConnection& c) {
    Statement(c, Sql::log_bump_id).run("allocating a sliding log");
    Statement read(c, Sql::log_read_id);
    read.step("allocating a sliding log");
    return read.column_int(0);
}

struct LogEntry {
    double t = 0.0;
    double n = 0.0;
    double cum = 0.0;  // units admitted by the log up to and including this entry
};

// A bound b such that every entry at t <= b is expired at `vnow` (SlidingWindow's test:
// t + window <= vnow). fl(t + window) never decreases as t grows, so any b passing the test
// will do; vnow - window passes or is a few ulps above one that does.
double expired_bound(double vnow, double window) {
    double b = vnow - window;
    for (int i = 0; i < 64 && !(b + window <= vnow); ++i) b = std::nextafter(b, -kInf);
    return b + window <= vnow ? b : -kInf;
}

// The oldest entry not expired at `vnow` (SlidingWindow's view): an index seek to the first
// candidate, then at most the few entries within rounding of the boundary.
std::optional<LogEntry> oldest_live(SqliteConnection& c, const LogHead& h, double vnow,
                                    double window) {
    const double after =
        std::max(std::nextafter(h.live_from, -kInf), expired_bound(vnow, window));
    Statement rows(c, Sql::log_rows_after);
    rows.bind(1, h.log_id).bind(2, after);
    while (rows.step("reading the sliding log")) {
        const double t = rows.column_double(0);
        if (t + window <= vnow) continue;  // expired, deleted by a later step
        return LogEntry{t, static_cast<double>(rows.column_int(1)),
                        static_cast<double>(rows.column_int(2))};
    }
    return std::nullopt;
}

// SlidingWindow::rebase on rows: the glitched entries (t > far) are the newest rows; they
// merge into one entry at c = max(now, the newest live entry at t <= far), whose cum is the
// head's last_cum (cum counts units, not time). With `write`, the rows change (a one-time
// cost of O(glitched rows), in the decision's transaction; the caller writes the head);
// without (a peek), only `head` is re-based and the rows beyond `far` read as at c.
// False: rows a step could not have written (the caller reports corrupt state).
bool rebase_rows(SqliteConnection& c, LogHead& head, double now, double far, bool write) {
    std::optional<LogEntry> prev;
    {
        Statement before(c, Sql::log_row_at_or_before);
        before.bind(1, head.log_id).bind(2, far);
        if (before.step("reading the sliding log") && before.column_double(0) >= head.live_from) {
            prev = LogEntry{before.column_double(0), static_cast<double>(before.column_int(1)),
                            static_cast<double>(before.column_int(2))};
        }
    }
    double first_cum = 0.0;  // cum before the oldest glitched entry
    {
        Statement first(c, Sql::log_rows_after);
        first.bind(1, head.log_id).bind(2, std::max(far, std::nextafter(head.live_from, -kInf)));
        if (!first.step("reading the sliding log")) return false;
        first_cum = static_cast<double>(first.column_int(2) - first.column_int(1));
    }
    const double units = head.last_cum - first_cum;
    if (!(units >= 1.0)) return false;
    const bool merge = prev && prev->t >= now;
    const double at = merge ? prev->t : now;
    const double n = merge ? prev->n + units : units;
    if (write) {
        Statement(c, Sql::log_delete_from).bind(1, head.log_id).bind(2, at).run(
            "re-basing the sliding log");
        upsert_entry(c, head.log_id, at, n, head.last_cum);
        head.live_from = std::min(head.live_from, at);
    }
    head.last_t = at;
    head.last_n = n;
    return true;
}

// The heads of logs the pruning sweep is about to delete in (from, end] (end absent: to the
// table's end): queue their rows for drain_dead_logs. A head too corrupt to name its log
// leaves its rows behind (unreachable: ids are never reused).
void mark_dead_logs(SqliteConnection& c, std::int64_t from_algo, const std::string& from_key,
                    const std::optional<std::pair<std::int64_t, std::string>>& end,
                    double now) {
    std::vector<std::int64_t> ids;
    {
        Statement heads(c, Sql::log_expired_heads);
        heads.bind(1, from_algo).bind_text(2, from_key).bind(5, now);
        if (end) {
            heads.bind(3, end->first).bind_text(4, end->second);
        } else {
            heads.bind_null(3).bind_null(4);
        }
        while (heads.step("pruning expired state")) {
            const auto [data, bytes] = heads.column_blob(0);
            double id = 0.0;
            if (bytes >= sizeof id) std::memcpy(&id, data, sizeof id);
            if (is_count(id, kMaxCum)) ids.push_back(static_cast<std::int64_t>(id));
        }
    }
    for (const std::int64_t id : ids) {
        Statement(c, Sql::log_mark_dead).bind(1, id).run("pruning expired state");
    }
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
    SqliteConnection& c = lease.connection();
    if (algo == static_cast<int>(SlidingWindow::id)) return erase_sliding_log(c, key);
    Statement erase(c, Sql::delete_state);
    return erase.bind(1, std::int64_t{algo}).bind_text(2, key).run("deleting state") > 0;
}

std::vector<double> SqliteStore::read_state(int algo, std::string_view key) {
    Lease lease(*this);
    SqliteConnection& c = lease.connection();
    if (algo == static_cast<int>(SlidingWindow::id)) {
        Transaction txn(c, Transaction::Kind::read);
        std::optional<std::vector<double>> rows = read_sliding_log(c, key);
        txn.commit();
        if (rows) return std::move(*rows);
    }
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
    mark_dead_logs(c, sweep_algo_, sweep_key_, end, now);
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
    bool drained = false;
    drain_dead_logs(c, drained);
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
    // The rows of the logs just pruned (not counted: they belonged to the rows counted).
    for (bool drained = false; !drained;) {
        Lease lease(*this);
        SqliteConnection& c = lease.connection();
        Transaction txn(c, Transaction::Kind::write);
        drain_dead_logs(c, drained);
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

// ---- sliding-window log on rows: the SqliteStore members -------------------------------

Decision SqliteStore::step_short_log(SqliteConnection& c, std::string_view key, double now,
                                     std::int64_t cost, const SlidingWindow::Params& params,
                                     bool peek) {
    SlidingWindow::State state;
    bool has_blob = false;
    {
        Statement select(c, Sql::select_state);
        select.bind(1, kBlobLogAlgo).bind_text(2, key);
        has_blob = read_row(select, c, key, "reading state");
    }
    if (has_blob && !SlidingWindow::decode(c.decoded.data(), c.decoded.size(), state)) {
        throw_corrupt(SlidingWindow::name, key);
    }
    if (peek) return SlidingWindow::peek(state, now, params);
    // A clock-glitch re-base is written back even by a rejection (SlidingWindow::rebase).
    const bool rebased = SlidingWindow::rebase(state, now);
    const Decision d = SlidingWindow::step(state, now, cost, params);
    if (!d.allowed && !rebased) return d;  // a rejection leaves the log unchanged
    const double fresh_at = SlidingWindow::fresh_at(state, params);
    if (state.entries.size() <= static_cast<std::size_t>(kLogInlineEntries)) {
        SlidingWindow::encode(state, c.outcome.encoded);
        Statement(c, has_blob ? Sql::update_state : Sql::insert_state)
            .bind(1, kBlobLogAlgo)
            .bind_text(2, key)
            .bind_blob(3, c.outcome.encoded.data(), c.outcome.encoded.size() * sizeof(double))
            .bind(4, fresh_at)
            .run("writing state");
    } else {
        // To rows, once per log. An admitted step leaves at most `limit` <= 2^52 units, so
        // every cum is exact.
        LogHead head;
        head.log_id = next_log_id(c);
        for (const SlidingWindow::Entry& e : state.entries) {
            head.last_cum += e.n;
            upsert_entry(c, head.log_id, e.t, e.n, head.last_cum);
        }
        head.live_from = state.entries[0].t;
        head.last_t = state.entries.back().t;
        head.last_n = state.entries.back().n;
        write_head(c, key, head, false, fresh_at);
        if (has_blob) {
            Statement(c, Sql::delete_state)
                .bind(1, kBlobLogAlgo)
                .bind_text(2, key)
                .run("moving state to rows");
        }
    }
    bool wrapped = false;
    if (++writes_ % kPruneEvery == 0) prune_state(c, now, wrapped);
    return d;
}

std::size_t SqliteStore::drain_dead_logs(SqliteConnection& c, bool& drained) {
    drained = false;
    std::int64_t budget = kPruneBatch;
    std::size_t deleted = 0;
    for (int retired = 0; budget > 0 && retired < kPruneBatch; ++retired) {
        std::int64_t id = 0;
        {
            Statement first(c, Sql::log_first_dead);
            if (!first.step("pruning expired state")) {
                drained = true;
                break;
            }
            id = first.column_int(0);
        }
        const std::int64_t rows = Statement(c, Sql::log_trim)
                                      .bind(1, id)
                                      .bind(2, kInf)
                                      .bind(3, budget)
                                      .run("pruning expired state");
        deleted += static_cast<std::size_t>(rows);
        if (rows == budget) break;  // the budget is spent; this log may have more rows
        budget -= rows;
        Statement(c, Sql::log_unmark_dead).bind(1, id).run("pruning expired state");
    }
    return deleted;
}

Decision SqliteStore::apply_sliding_log(std::string_view key, double now, std::int64_t cost,
                                        std::int64_t limit_count, double window,
                                        Operation op) {
    const bool peek = op == Operation::peek;
    Lease lease(*this);
    SqliteConnection& c = lease.connection();
    // Several statements must see one snapshot, so even a peek is a (read) transaction.
    Transaction txn(c, peek ? Transaction::Kind::read : Transaction::Kind::write);
    LogHead head;
    const HeadRead read = read_head(c, key, head);
    if (read == HeadRead::corrupt) throw_corrupt(SlidingWindow::name, key);
    if (read == HeadRead::absent) {
        const Decision d = step_short_log(c, key, now, cost, {limit_count, window}, peek);
        txn.commit();
        return d;
    }

    // A clock glitch first (SlidingWindow::rebase). A peek only reads the log as re-based:
    // rows beyond `far` read as one entry at the head's (re-based) last_t.
    const double far = now + kClockTolerance;  // ahead_of_clock(t, now) == (t > far)
    const bool glitched = ahead_of_clock(head.last_t, now);
    if (glitched && !rebase_rows(c, head, now, far, !peek)) {
        throw_corrupt(SlidingWindow::name, key);
    }

    // From here on, SlidingWindow::view/decide/step (sliding_window.hpp) with the same float
    // operations: the log's entries are the rows at t >= live_from, the newest is the head's.
    const double limit = static_cast<double>(limit_count);
    const double need = static_cast<double>(peek ? 1 : cost);
    const double vnow = std::max(now, head.last_t);  // a head means a non-empty log
    std::optional<LogEntry> first = oldest_live(c, head, vnow, window);
    double count = 0.0;
    if (first) {
        count = head.last_cum - (first->cum - first->n);
        if (!(first->n >= 1.0) || !(first->cum <= head.last_cum) || !(count >= first->n)) {
            throw_corrupt(SlidingWindow::name, key);
        }
    }
    Decision d;
    if (need > limit) {
        d = insufficient_capacity(0, 0.0);
    } else if (count + need <= limit) {
        d.allowed = true;
    } else if (first) {
        // Oldest entries leave first: the entry at which `to_leave` units have left is the
        // first whose cum reaches (units before the live entries) + to_leave.
        const double to_leave = count + need - limit;
        Statement at(c, Sql::log_row_at_cum);
        const double target = first->cum - first->n + to_leave;
        at.bind(1, head.log_id).bind(2, static_cast<std::int64_t>(target));
        if (at.step("reading the sliding log")) {
            const double t = at.column_double(0);
            d.retry_after = (glitched && t > far ? head.last_t : t) + window - now;
        }
    }
    d.remaining = floor_count(limit - count);
    d.reset_after = count > 0.0 ? head.last_t + window - now : 0.0;
    d.meta[0] = count;
    if (peek || !d.allowed) {  // a rejection leaves the log untouched (but for a re-base)
        if (glitched && !peek) write_head(c, key, head, true, head.last_t + window);
        txn.commit();
        return d;
    }

    double base = first ? first->cum - first->n : head.last_cum;  // units before the live ones
    if (need > kMaxCum - head.last_cum) {  // (last_cum + need could round down to 2^53)
        // Renumber so cum stays exact; rows before the live ones go to <= 0, keeping order.
        Statement(c, Sql::log_rebase)
            .bind(1, head.log_id)
            .bind(2, static_cast<std::int64_t>(base))
            .run("rebasing the sliding log");
        head.last_cum -= base;
        base = 0.0;
    }
    // Pop the expired entries (logically: live_from moves past them), then merge with the
    // newest entry or append. An expired newest entry at vnow is replaced by the upsert.
    const bool merge = first && head.last_t == vnow;
    const double n = merge ? head.last_n + need : need;
    const double cum = head.last_cum + need;
    upsert_entry(c, head.log_id, vnow, n, cum);
    head.live_from = first ? first->t : vnow;
    Statement(c, Sql::log_trim)
        .bind(1, head.log_id)
        .bind(2, head.live_from)
        .bind(3, std::int64_t{kLogTrimPerDecision})
        .run("trimming the sliding log");
    head.last_t = vnow;
    head.last_n = n;
    head.last_cum = cum;
    write_head(c, key, head, true, vnow + window);
    const double total = cum - base;
    d.meta[0] = total;
    d.remaining = floor_count(limit - total);
    d.reset_after = vnow + window - now;
    bool wrapped = false;
    if (++writes_ % kPruneEvery == 0) prune_state(c, now, wrapped);
    txn.commit();
    return d;
}

bool SqliteStore::erase_sliding_log(SqliteConnection& c, std::string_view key) {
    Transaction txn(c, Transaction::Kind::write);
    LogHead head;
    if (read_head(c, key, head) == HeadRead::valid) {
        Statement(c, Sql::log_delete_all).bind(1, head.log_id).run("deleting state");
    }
    // The head (valid or not) and any blob of the old layout.
    std::int64_t deleted = 0;
    for (const std::int64_t algo : {kLogHeadAlgo, kBlobLogAlgo}) {
        deleted +=
            Statement(c, Sql::delete_state).bind(1, algo).bind_text(2, key).run("deleting state");
    }
    txn.commit();
    return deleted > 0;
}

std::optional<std::vector<double>> SqliteStore::read_sliding_log(SqliteConnection& c,
                                                                 std::string_view key) {
    LogHead head;
    const HeadRead read = read_head(c, key, head);
    if (read == HeadRead::absent) return std::nullopt;
    if (read == HeadRead::corrupt) throw_corrupt(SlidingWindow::name, key);
    std::vector<double> out;
    Statement rows(c, Sql::log_rows_after);
    rows.bind(1, head.log_id).bind(2, std::nextafter(head.live_from, -kInf));
    while (rows.step("reading the sliding log")) {
        out.push_back(rows.column_double(0));
        out.push_back(static_cast<double>(rows.column_int(1)));
    }
    return out;
}

}  // namespace ratelimiter

namespace ratelimiter {

// The per-algorithm step paths declared extern in sqlite_store.hpp.
#define RATELIMITER_DEFINE_SQLITE(Algo) RATELIMITER_SQLITE_INSTANCES(template, Algo)
RATELIMITER_FOR_EACH_ALGORITHM(RATELIMITER_DEFINE_SQLITE)
#undef RATELIMITER_DEFINE_SQLITE

static_assert(kAlgorithmCount == 7, "RATELIMITER_FOR_EACH_ALGORITHM must list every algorithm");

}  // namespace ratelimiter
