// SQLite store: limiter state in a SQLite database file shared by threads and processes.
//
// Each decision is one `BEGIN IMMEDIATE` transaction: read the key's state row, run the
// algorithm's step, write the row back only if the step changed it, COMMIT. The write lock
// taken by BEGIN IMMEDIATE makes the read-step-write atomic across every process on the host.
//
// Concurrency: one connection per store, used under an in-process mutex. SQLite admits one
// writer per database at a time, so several connections in one process would only contend
// for the same lock through SQLite's sleep-and-retry busy handler; a mutex hands the
// connection over without sleeping (measured in bench/bench_sqlite.py). Other processes
// contend through the busy handler (busy_timeout). Waiting for the mutex is bounded by
// busy_timeout too, so no call can hang: a lock held too long gives BackendError.
//
// Failure policy (Options::on_error, store/on_error.hpp): a decision SQLite cannot make (a
// lock held past busy_timeout, an I/O error, a corrupt file or state row, a closed store)
// raises BackendError under "raise"; under "allow" / "deny" it is the policy's fallback
// Decision, counted in counters(). Opening the file and the BaseBackend primitives always
// raise.
// ":memory:" is one private database reached through that one connection, so it works from
// every thread. After fork() a child reopens the file (an inherited connection must not be
// used; it is abandoned, never closed, so the parent's locks stay intact).
//
// Tables: rl_state(algo, key, state, expires_at) holds limiter state (state = the
// algorithm's encoded doubles, host byte order); rl_keys/rl_zset hold the BaseBackend
// primitives (string values are opaque TEXT, JSON written by the Python side).
// Pruning: every kPruneEvery writes, in the same transaction, a sweep visits the next
// kPruneBatch rows of rl_state in primary-key order (wrapping at the end) and deletes the
// expired ones; primitive keys are pruned up to kPruneBatch at a time through their expiry
// index. Each row is thus visited every kPruneEvery/kPruneBatch * rows writes, so a file used
// by rotating keys stays within ~1.15x the rows active within their windows.
//
// Sliding-window log: a short log (up to kLogInlineEntries entries) is one blob, as every
// other algorithm's state, stepped by SlidingWindow itself: a 1 KB rewrite costs less than
// the statements rows need. A step leaving a longer log moves it to one row per entry, so a
// decision costs O(log n) rather than O(limit) (a blob of 100,000 entries is 1.6 MB read and
// rewritten per decision). rl_log(log_id, t, n, cum): an entry of n units admitted at t, and
// cum = the units the log has admitted up to and including it, so "units in the window" =
// cum(newest) - cum before the oldest live entry: index lookups, never a scan. An index on
// (log_id, cum) finds the entry whose expiry admits a rejected request (retry_after). The
// key's rl_state row, under algo kSlidingLogAlgo, is the log's head: [log_id, live_from,
// last_t, last_n, last_cum] (entries before live_from were popped by an earlier step; the
// newest entry is kept there so a decision need not look it up), and carries expires_at as
// every state row does, so the pruning sweep retires idle logs (an idle key comes back as a
// blob). Rows are deleted in bounded amounts: popped entries at most kLogTrimPerDecision per
// admitted decision (more than the one it adds, so they never pile up), the rows of a pruned
// log (queued in rl_log_dead) at most kPruneBatch per pruning pass. log_id (from rl_meta,
// never reused) rather than the key names the rows, so a key created again never sees rows
// of its pruned predecessor. A log in rows stays in rows until pruned or reset. reset (erase)
// deletes the key's rows at once. Decisions are the memory store's exactly:
// SqliteStore::apply_sliding_log repeats SlidingWindow's arithmetic on the rows.
// Migration: the blob layout is unchanged (rl_state, algo SlidingWindow::id), so existing
// files keep working as they are; a blob over kLogInlineEntries entries (only files from
// before the rows layout hold one) moves to rows on the key's first admitted decision (a
// one-time O(entries), in that decision's transaction); a peek reads it without moving it.
// An older library version sharing the file would see a key in rows as fresh: upgrade every
// process using a file together.
//
// Time: limiter state expires by the limiter's clock (`now` passed in); primitives take
// `now` from the caller as well (Python passes time.time()).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ratelimiter/algorithm/all.hpp"
#include "ratelimiter/algorithm/sliding_window.hpp"
#include "ratelimiter/error.hpp"
#include "ratelimiter/result.hpp"
#include "ratelimiter/store/apply_step.hpp"
#include "ratelimiter/store/multi.hpp"
#include "ratelimiter/store/on_error.hpp"
#include "ratelimiter/store/operation.hpp"

namespace ratelimiter {

// A primitive was used on a key holding the other kind of value (e.g. zadd on a string).
class WrongTypeError : public BackendError {
public:
    using BackendError::BackendError;
};

class SqliteConnection;  // sqlite_store.cpp: the handle and its prepared statements

class SqliteStore {
public:
    enum class Synchronous { off, normal, full, extra };

    struct Options {
        bool wal_mode = true;
        std::chrono::milliseconds busy_timeout{5000};
        Synchronous synchronous = Synchronous::normal;
        // What a decision answers when SQLite cannot make it (store/on_error.hpp).
        OnError on_error = OnError::raise;
    };

    // Writes between two pruning passes, and the rows one pass visits (so deletes at most).
    static constexpr std::uint64_t kPruneEvery = 64;
    static constexpr int kPruneBatch = 500;
    // rl_state.algo of a sliding-window log head (the rows layout; SlidingWindow::id marks
    // the old blob layout), and the popped entries one admitted decision deletes at most.
    static constexpr int kSlidingLogAlgo = 101;
    static constexpr int kLogTrimPerDecision = 4;
    // Entries up to which a sliding log stays one blob (1 KB; see the top of this file).
    static constexpr int kLogInlineEntries = 64;

    // Opens (creating if needed) the database and its tables. Throws BackendError with the
    // path and a hint when the file or its directory is not writable,
    // BackendConnectionError when it cannot be opened at all.
    explicit SqliteStore(std::string path, Options options);
    SqliteStore(const SqliteStore&) = delete;
    SqliteStore& operator=(const SqliteStore&) = delete;
    ~SqliteStore();

    // Runs one step of Algo on `key` in one BEGIN IMMEDIATE transaction. `input`: the
    // algorithm's per-call input, if it takes one (common.hpp StepInputOf).
    template <class Algo>
    Decision apply(std::string_view key, double now, std::int64_t cost,
                   const typename Algo::Params& params, Operation op,
                   const StepInputOf<Algo>& input = {});

    // Several limits of one key at once (MultiRateLimiter): every keys[i] row is read,
    // decided and written in one BEGIN IMMEDIATE transaction. See store/multi.hpp for `op`.
    template <class Algo>
    bool apply_multi(const std::vector<std::string>& keys, const typename Algo::Params* params,
                     const std::int64_t* costs, double now, MultiOp op, Decision* out);
    template <class Algo>
    void erase_multi(const std::vector<std::string>& keys) {
        for (const std::string& key : keys) erase_state(static_cast<int>(Algo::id), key);
    }

    // Forgets `key` for Algo. Returns whether it existed.
    template <class Algo>
    bool erase(std::string_view key) {
        return erase_state(static_cast<int>(Algo::id), key);
    }

    // Encoded state of `key` for Algo (empty if absent). For tests and debugging.
    template <class Algo>
    std::vector<double> snapshot(std::string_view key) {
        return read_state(static_cast<int>(Algo::id), key);
    }

    // Limiter-state rows, expired or not (a count over the table).
    std::size_t size();
    // Deletes every limiter-state row and primitive key expired at `now`, and the entry rows
    // of pruned sliding logs, in batches of kPruneBatch (one transaction each, so other
    // processes are never blocked long). Returns the state rows and keys deleted.
    std::size_t purge_expired(double now);
    // Whether the database answers a trivial query.
    bool ping();
    // Decisions answered by on_error instead of by SQLite.
    FallbackCounters counters() const { return policy_.counters(); }
    OnError on_error() const { return policy_.on_error(); }
    // Closes the connection; later calls throw BackendError. Idempotent.
    void close();
    const std::string& path() const { return path_; }

    // BaseBackend primitives. Expired keys read as absent. `ttl` <= 0 expires at once.
    std::optional<std::string> get(std::string_view key, double now);
    void set(std::string_view key, std::string_view value, std::optional<double> ttl,
             double now);
    bool del(std::string_view key);
    std::int64_t incr(std::string_view key, std::int64_t amount, double now);
    bool expire(std::string_view key, double ttl, double now);
    void zadd(std::string_view key, double score, std::string_view member, double now);
    std::int64_t zremrangebyscore(std::string_view key, double min, double max, double now);
    std::int64_t zcard(std::string_view key, double now);
    std::vector<std::pair<std::string, double>> zrange_by_score(std::string_view key,
                                                                double min, double max,
                                                                double now);

    // What one algorithm step needs from run_step, without run_step knowing the algorithm:
    // given the stored row (`present` false when absent), decide; when the state changed,
    // fill `encoded` and `fresh_at` and set `write`. A non-owning callable reference, so the
    // transaction code lives in the .cpp once rather than in a template per algorithm.
    struct StepOutcome {
        std::vector<double> encoded;
        double fresh_at = 0.0;
        bool write = false;
    };
    class StepFn {
    public:
        template <class F>
        explicit StepFn(F& f)
            : object_(&f),
              call_([](void* o, bool present, const double* data, std::size_t n,
                       StepOutcome& out) { return (*static_cast<F*>(o))(present, data, n, out); }) {}
        Decision operator()(bool present, const double* data, std::size_t n,
                            StepOutcome& out) const {
            return call_(object_, present, data, n, out);
        }

    private:
        void* object_;
        Decision (*call_)(void*, bool, const double*, std::size_t, StepOutcome&);
    };

    // The multi-key twin of StepFn: rows[i] is keys[i]'s stored row, outcomes[i] what to
    // write back for it.
    struct StoredRow {
        bool present = false;
        std::vector<double> data;
    };
    class MultiStepFn {
    public:
        template <class F>
        explicit MultiStepFn(F& f)
            : object_(&f),
              call_([](void* o, const std::vector<StoredRow>& rows,
                       std::vector<StepOutcome>& outcomes) {
                  (*static_cast<F*>(o))(rows, outcomes);
              }) {}
        void operator()(const std::vector<StoredRow>& rows,
                        std::vector<StepOutcome>& outcomes) const {
            call_(object_, rows, outcomes);
        }

    private:
        void* object_;
        void (*call_)(void*, const std::vector<StoredRow>&, std::vector<StepOutcome>&);
    };

private:
    class Lease;  // the connection, held under the mutex (bounded wait), reopened after fork

    Decision run_step(int algo, std::string_view key, double now, bool read_only,
                      const StepFn& step);
    void run_multi(int algo, const std::vector<std::string>& keys, double now, bool read_only,
                   const MultiStepFn& step);
    // SlidingWindow on either layout (see the top of this file); the same decisions as
    // SlidingWindow::step / peek on the same log.
    Decision apply_sliding_log(std::string_view key, double now, std::int64_t cost,
                               std::int64_t limit, double window, Operation op);
    // A key with no rows-layout head (a transaction is open): SlidingWindow's own step on
    // the blob, which moves to rows when it outgrows kLogInlineEntries.
    Decision step_short_log(SqliteConnection& c, std::string_view key, double now,
                            std::int64_t cost, const SlidingWindow::Params& params, bool peek);
    // Deletes up to kPruneBatch rows of pruned logs (rl_log_dead); returns the rows deleted
    // and sets `drained` when no pruned log has rows left.
    static std::size_t drain_dead_logs(SqliteConnection& c, bool& drained);
    // erase / snapshot of a sliding log, either layout (a write / read transaction is open
    // for read_sliding_log; erase_sliding_log opens its own). nullopt: no rows-layout head.
    static bool erase_sliding_log(SqliteConnection& c, std::string_view key);
    static std::optional<std::vector<double>> read_sliding_log(SqliteConnection& c,
                                                               std::string_view key);
    // One pruning pass over rl_state / rl_keys (a write transaction must be open); returns
    // the rows deleted. prune_state sets `wrapped` when its sweep reached the table's end.
    std::size_t prune_state(SqliteConnection& c, double now, bool& wrapped);
    static std::size_t prune_keys(SqliteConnection& c, double now);
    bool erase_state(int algo, std::string_view key);
    std::vector<double> read_state(int algo, std::string_view key);
    [[noreturn]] static void throw_corrupt(std::string_view algo_name, std::string_view key);

    std::string path_;
    Options options_;
    FallbackPolicy policy_;
    bool in_memory_;
    std::timed_mutex mutex_;  // guards everything below
    std::unique_ptr<SqliteConnection> connection_;
    pid_t owner_pid_;            // process that opened connection_
    bool closed_ = false;
    std::uint64_t writes_ = 0;   // limiter-state writes, for pruning
    std::uint64_t key_writes_ = 0;  // primitive writes, for pruning
    std::int64_t sweep_algo_ = -1;  // the pruning sweep's position: (algo, key) last visited
    std::string sweep_key_;
};

template <class Algo>
Decision SqliteStore::apply(std::string_view key, double now, std::int64_t cost,
                            const typename Algo::Params& params, Operation op,
                            const StepInputOf<Algo>& input) {
    try {
        if constexpr (Algo::id == SlidingWindow::id) {
            return apply_sliding_log(key, now, cost, params.limit, params.window, op);
        }
        auto step = [&](bool present, const double* data, std::size_t n, StepOutcome& out) {
            return apply_encoded_step<Algo>(present, data, n, now, cost, params, op, out,
                                            [&] { throw_corrupt(Algo::name, key); }, input);
        };
        return run_step(static_cast<int>(Algo::id), key, now, op == Operation::peek,
                        StepFn(step));
    } catch (const BackendError&) {
        return policy_.answer();  // rethrows under "raise"
    }
}

template <class Algo>
bool SqliteStore::apply_multi(const std::vector<std::string>& keys,
                              const typename Algo::Params* params, const std::int64_t* costs,
                              double now, MultiOp op, Decision* out) {
    bool allowed = true;
    auto step = [&](const std::vector<StoredRow>& rows, std::vector<StepOutcome>& outcomes) {
        thread_local std::vector<typename Algo::State> states;
        states.resize(rows.size());
        for (std::size_t i = 0; i < rows.size(); ++i) {
            states[i] = load_state<Algo>(rows[i].present, rows[i].data.data(), rows[i].data.size(),
                                         now, params[i], [&] { throw_corrupt(Algo::name, keys[i]); });
        }
        allowed = ratelimiter::apply_multi<Algo>(
            states.data(), params, costs, rows.size(), now, op, out,
            [&](std::size_t i, const typename Algo::State& state, double fresh_at) {
                Algo::encode(state, outcomes[i].encoded);
                outcomes[i].fresh_at = fresh_at;
                outcomes[i].write = true;
            });
    };
    try {
        run_multi(static_cast<int>(Algo::id), keys, now, op == MultiOp::peek,
                  MultiStepFn(step));
    } catch (const BackendError&) {
        const Decision d = policy_.answer();  // rethrows under "raise"
        for (std::size_t i = 0; i < keys.size(); ++i) out[i] = d;
        return d.allowed;
    }
    return allowed;
}

// Compiled once, in sqlite_store.cpp (build time, issue 8: the core library compiles them
// in parallel with the binding, without pybind11's headers).
#define RATELIMITER_SQLITE_INSTANCES(PREFIX, Algo)                                           \
    PREFIX Decision SqliteStore::apply<Algo>(std::string_view, double, std::int64_t,          \
                                             const Algo::Params&, Operation,                  \
                                             const StepInputOf<Algo>&);                       \
    PREFIX bool SqliteStore::apply_multi<Algo>(const std::vector<std::string>&,               \
                                               const Algo::Params*, const std::int64_t*,      \
                                               double, MultiOp, Decision*);
#define RATELIMITER_EXTERN_SQLITE(Algo) RATELIMITER_SQLITE_INSTANCES(extern template, Algo)
RATELIMITER_FOR_EACH_ALGORITHM(RATELIMITER_EXTERN_SQLITE)
#undef RATELIMITER_EXTERN_SQLITE

}  // namespace ratelimiter
