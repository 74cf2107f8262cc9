#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "catch.hpp"
#include "ratelimiter/store/memory_store.hpp"
#include "ratelimiter/store/sqlite_store.hpp"

using namespace ratelimiter;
namespace fs = std::filesystem;

namespace {

// A fresh directory under /tmp, removed with everything in it at scope exit.
struct TempDir {
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "rl-sqlite-XXXXXX").string();
        REQUIRE(mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
    fs::path path;
};

SqliteStore::Options options(std::chrono::milliseconds busy = std::chrono::milliseconds(5000)) {
    SqliteStore::Options o;
    o.busy_timeout = busy;
    return o;
}

// Limit 100 per 60 s for every algorithm; adaptive without burst so exactly 100 pass at once.
template <class Algo>
typename Algo::Params hundred_per_minute() {
    typename Algo::Spec spec{};
    spec.limit = 100;
    spec.window = 60.0;
    if constexpr (std::is_same_v<Algo, Adaptive>) spec.burst_multiplier = 1.0;
    return Algo::make_params(spec);
}

bool same(const Decision& a, const Decision& b) {
    return a.allowed == b.allowed && a.insufficient_capacity == b.insufficient_capacity &&
           a.remaining == b.remaining && a.reset_after == b.reset_after &&
           a.retry_after == b.retry_after && a.meta == b.meta;
}

// Runs `sql` on its own connection to `path` (another "process" as SQLite sees it).
void run_sql(const std::string& path, const char* sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
}

}  // namespace

TEST_CASE("sqlite store: exactly the limit admitted from 8 threads, every algorithm",
          "[sqlite_store]") {
    TempDir dir;
    SqliteStore store(dir.file("rl.db"), options());
    for_each_algorithm([&](auto tag) {
        using Algo = typename decltype(tag)::type;
        const auto params = hundred_per_minute<Algo>();
        std::atomic<int> admitted{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 8; ++t) {
            threads.emplace_back([&] {
                for (int i = 0; i < 50; ++i) {
                    admitted += store.apply<Algo>("k", 1000.0, 1, params, Operation::consume)
                                    .allowed;
                }
            });
        }
        for (auto& th : threads) th.join();
        INFO(Algo::name);
        REQUIRE(admitted == 100);
    });
    REQUIRE(store.size() == kAlgorithmCount);
}

TEST_CASE("sqlite store: separate connections on one file never over-admit", "[sqlite_store]") {
    // Four stores = four connections, contending through SQLite's file locks as processes do.
    TempDir dir;
    std::vector<std::unique_ptr<SqliteStore>> stores;
    for (int i = 0; i < 4; ++i) {
        stores.push_back(std::make_unique<SqliteStore>(dir.file("rl.db"), options()));
    }
    const auto params = hundred_per_minute<Gcra>();
    std::atomic<int> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 60; ++i) {
                admitted += stores[static_cast<std::size_t>(t % 4)]
                                ->apply<Gcra>("k", 1000.0, 1, params, Operation::consume)
                                .allowed;
            }
        });
    }
    for (auto& th : threads) th.join();
    REQUIRE(admitted == 100);
}

TEST_CASE("sqlite store: :memory: is one database shared by every thread", "[sqlite_store]") {
    SqliteStore store(":memory:", options());
    const auto params = hundred_per_minute<FixedWindow>();
    std::atomic<int> admitted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 50; ++i) {
                admitted +=
                    store.apply<FixedWindow>("k", 1.0, 1, params, Operation::consume).allowed;
            }
        });
    }
    for (auto& th : threads) th.join();
    REQUIRE(admitted == 100);
    REQUIRE(store.snapshot<FixedWindow>("k") == std::vector<double>{0.0, 100.0, 60.0});
}

TEST_CASE("sqlite store: rejected first requests and peeks write nothing; erase forgets",
          "[sqlite_store]") {
    SqliteStore store(":memory:", options());
    const auto p = FixedWindow::make_params({2, 10.0});
    REQUIRE_FALSE(store.apply<FixedWindow>("big", 1.0, 3, p, Operation::consume).allowed);
    REQUIRE(store.apply<FixedWindow>("new", 1.0, 1, p, Operation::peek).allowed);
    REQUIRE(store.size() == 0);
    REQUIRE(store.apply<FixedWindow>("k", 1.0, 2, p, Operation::consume).allowed);
    REQUIRE_FALSE(store.apply<FixedWindow>("k", 1.0, 1, p, Operation::consume).allowed);
    REQUIRE(store.snapshot<FixedWindow>("k") == std::vector<double>{0.0, 2.0});
    REQUIRE(store.erase<FixedWindow>("k"));
    REQUIRE_FALSE(store.erase<FixedWindow>("k"));
    REQUIRE(store.apply<FixedWindow>("k", 1.0, 1, p, Operation::consume).allowed);
}

TEST_CASE("sqlite store: expired rows are pruned in bounded batches", "[sqlite_store]") {
    TempDir dir;
    SqliteStore store(dir.file("rl.db"), options());
    const auto p = FixedWindow::make_params({1000000, 10.0});  // used at t=1: fresh at 10
    for (int i = 0; i < 10000; ++i) {
        store.apply<FixedWindow>("old" + std::to_string(i), 1.0, 1, p, Operation::consume);
    }
    // Pruning passes already ran, but nothing had expired yet.
    REQUIRE(store.size() == 10000);
    // One pass visits kPruneBatch rows every kPruneEvery writes: a sweep of these 10,050
    // rows takes 21 passes; two sweeps' worth of writes clear every expired row wherever
    // the sweep stood.
    const int writes = 2 * 21 * static_cast<int>(SqliteStore::kPruneEvery);
    for (int i = 0; i < writes; ++i) {
        REQUIRE(store.apply<FixedWindow>("new" + std::to_string(i % 50), 20.0, 1, p,
                                         Operation::consume)
                    .allowed);
    }
    REQUIRE(store.size() == 50);
    // purge_expired sweeps the whole table at once (in batches).
    REQUIRE(store.purge_expired(29.0) == 0);
    REQUIRE(store.purge_expired(30.0) == 50);
    REQUIRE(store.size() == 0);
}

TEST_CASE("sqlite store: unopenable or read-only databases give clear errors",
          "[sqlite_store]") {
    TempDir dir;
    REQUIRE_THROWS_AS(SqliteStore(dir.file("missing-dir/rl.db"), options()),
                      BackendConnectionError);
    const std::string path = dir.file("rl.db");
    { SqliteStore create(path, options()); }
    // Read-only as SQLite reports it (file permissions cannot stop root, who runs CI here;
    // tests/python covers chmod with an unprivileged user).
    try {
        SqliteStore ro("file:" + path + "?mode=ro", options());
        FAIL("opened a read-only database for writing");
    } catch (const BackendError& e) {
        REQUIRE(std::string(e.what()).find("is read-only") != std::string::npos);
    }
}

TEST_CASE("sqlite store: corrupt state is a BackendError naming the key", "[sqlite_store]") {
    TempDir dir;
    const std::string path = dir.file("rl.db");
    SqliteStore store(path, options());
    run_sql(path, "INSERT INTO rl_state VALUES(3, 'bad', x'0102', 1e300)");
    const auto p = TokenBucket::make_params({5, 10.0, std::nullopt});
    try {
        store.apply<TokenBucket>("bad", 1.0, 1, p, Operation::consume);
        FAIL("decided on a corrupt row");
    } catch (const BackendError& e) {
        REQUIRE(std::string(e.what()).find("'bad'") != std::string::npos);
    }
    REQUIRE(store.erase<TokenBucket>("bad"));
    REQUIRE(store.apply<TokenBucket>("bad", 1.0, 1, p, Operation::consume).allowed);
}

TEST_CASE("sqlite store: primitives with TTLs, counters and sorted sets", "[sqlite_store]") {
    SqliteStore s(":memory:", options());
    REQUIRE_FALSE(s.get("a", 0.0).has_value());
    s.set("a", "\"x\"", std::nullopt, 0.0);
    REQUIRE(s.get("a", 1e9) == "\"x\"");
    s.set("t", "1", 5.0, 100.0);
    REQUIRE(s.get("t", 104.9) == "1");
    REQUIRE_FALSE(s.get("t", 105.0).has_value());
    REQUIRE(s.incr("n", 5, 0.0) == 5);
    REQUIRE(s.incr("n", -2, 0.0) == 3);
    REQUIRE(s.expire("n", 10.0, 0.0));
    REQUIRE(s.incr("n", 1, 5.0) == 4);  // keeps its TTL
    REQUIRE(s.incr("n", 1, 10.0) == 1);  // expired: counts from 0
    REQUIRE_FALSE(s.expire("nothing", 1.0, 0.0));
    REQUIRE_THROWS_AS(s.incr("a", 1, 0.0), WrongTypeError);
    s.set("big", "9223372036854775807", std::nullopt, 0.0);
    REQUIRE_THROWS_AS(s.incr("big", 1, 0.0), std::overflow_error);

    s.zadd("z", 3.0, "c", 0.0);
    s.zadd("z", 1.0, "a", 0.0);
    s.zadd("z", 2.0, "b", 0.0);
    s.zadd("z", 0.5, "c", 0.0);  // re-scores
    REQUIRE(s.zcard("z", 0.0) == 3);
    using Members = std::vector<std::pair<std::string, double>>;
    REQUIRE(s.zrange_by_score("z", 0.0, 1.5, 0.0) == Members{{"c", 0.5}, {"a", 1.0}});
    REQUIRE(s.zremrangebyscore("z", 0.0, 1.0, 0.0) == 2);
    REQUIRE(s.zrange_by_score("z", -1e308, 1e308, 0.0) == Members{{"b", 2.0}});
    REQUIRE_THROWS_AS(s.zadd("a", 1.0, "m", 0.0), WrongTypeError);
    REQUIRE_THROWS_AS(s.get("z", 0.0), WrongTypeError);
    REQUIRE(s.zremrangebyscore("z", 2.0, 2.0, 0.0) == 1);
    REQUIRE_FALSE(s.del("z"));  // an emptied sorted set is gone
    s.zadd("z", 1.0, "m", 0.0);
    REQUIRE(s.expire("z", 1.0, 0.0));
    REQUIRE(s.zcard("z", 2.0) == 0);
    s.zadd("z", 9.0, "fresh", 2.0);  // the expired set's members do not come back
    REQUIRE(s.zrange_by_score("z", 0.0, 100.0, 2.0) == Members{{"fresh", 9.0}});
    s.set("z", "1", std::nullopt, 2.0);  // set replaces a sorted set
    REQUIRE(s.get("z", 2.0) == "1");
    REQUIRE(s.del("z"));
    REQUIRE(s.purge_expired(1e9) == 1);  // "t"; "n" had no TTL after restarting
}

TEST_CASE("sqlite store: close is final; ping reports it", "[sqlite_store]") {
    SqliteStore s(":memory:", options());
    REQUIRE(s.ping());
    s.close();
    s.close();
    REQUIRE_FALSE(s.ping());
    REQUIRE_THROWS_AS(s.get("a", 0.0), BackendError);
}

TEST_CASE("sqlite store: a forked child reopens the file and shares the limit",
          "[sqlite_store]") {
    TempDir dir;
    SqliteStore store(dir.file("rl.db"), options());
    const auto p = FixedWindow::make_params({10, 60.0});
    for (int i = 0; i < 4; ++i) store.apply<FixedWindow>("k", 1.0, 1, p, Operation::consume);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // No Catch2 macros in the child: report through the exit status.
        int admitted = 0;
        try {
            for (int i = 0; i < 10; ++i) {
                admitted += store.apply<FixedWindow>("k", 1.0, 1, p, Operation::consume).allowed;
            }
        } catch (...) {
            _exit(100);
        }
        _exit(admitted);
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 6);
    REQUIRE_FALSE(store.apply<FixedWindow>("k", 1.0, 1, p, Operation::consume).allowed);
}

// ---- the sliding-window log's rows layout --------------------------------------------------

namespace {

std::int64_t count_rows(const std::string& path, const char* sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
    const std::int64_t n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
}

}  // namespace

TEST_CASE("sqlite store: sliding log at limit 100,000 decides as memory, limit/window changing",
          "[sqlite_store]") {
    // Epoch-scale times, ulp-sized steps, multi-unit costs (so the log fills and rejections
    // look up retry_after by cumulative count), and params changing between calls. Steps stay
    // below the smallest window, so neither store ever prunes the key and their logs must be
    // identical after every step (snapshot: the entries still in the log; an expired state
    // may be pruned from one store and not yet from the other).
    TempDir dir;
    SqliteStore sqlite(dir.file("rl.db"), options());
    MemoryStore memory;
    std::mt19937_64 rng(7);
    const double windows[] = {5.0, 20.0, 60.0};
    const std::int64_t limits[] = {1000, 50000, 100000};
    // Mostly short steps and unit costs, so logs outgrow kLogInlineEntries into rows.
    const double steps[] = {0.0, 0x1p-22, 1e-3, 0.01, 0.02, 0.05, 1.0};
    const std::int64_t costs[] = {1, 1, 1, 1, 3, 700, 20000, 100001};
    auto params = SlidingWindow::make_params({100000, 60.0});
    double now = 1.7e9;
    int in_rows = 0;
    for (int i = 0; i < 4000; ++i) {
        if (rng() % 50 == 0) {
            params = SlidingWindow::make_params({limits[rng() % 3], windows[rng() % 3]});
        }
        now += steps[rng() % 7];
        const std::string key = "k";  // one key: busy, so neither store prunes it
        const std::int64_t cost = costs[rng() % 8];
        const Operation op = rng() % 8 == 0 ? Operation::peek : Operation::consume;
        const Decision a = sqlite.apply<SlidingWindow>(key, now, cost, params, op);
        const Decision b = memory.apply<SlidingWindow>(key, now, cost, params, op);
        INFO("step " << i);
        REQUIRE(same(a, b));
        const auto stored = sqlite.snapshot<SlidingWindow>(key);
        if (!stored.empty()) REQUIRE(stored == memory.snapshot<SlidingWindow>(key));
        if (rng() % 300 == 0) {
            REQUIRE(sqlite.erase<SlidingWindow>(key) == memory.erase<SlidingWindow>(key));
        }
        in_rows += count_rows(dir.file("rl.db"),
                              "SELECT count(*) FROM rl_state WHERE algo = 101") > 0;
    }
    REQUIRE(in_rows > 1000);  // a third of the steps on rows (measured: 1274), the rest on blobs
}

TEST_CASE("sqlite store: sliding log deletes popped rows a few per decision, all on erase",
          "[sqlite_store]") {
    TempDir dir;
    const std::string path = dir.file("rl.db");
    SqliteStore store(path, options());
    const auto p = SlidingWindow::make_params({10000, 10.0});
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(store.apply<SlidingWindow>("k", 1000.0 + i * 1e-3, 1, p, Operation::consume)
                    .allowed);
    }
    REQUIRE(count_rows(path, "SELECT count(*) FROM rl_log") == 1000);
    // All 1,000 expired: the log is logically empty at once, its rows go a few at a time.
    const Decision d = store.apply<SlidingWindow>("k", 1100.0, 1, p, Operation::consume);
    REQUIRE(d.meta[0] == 1.0);
    REQUIRE(store.snapshot<SlidingWindow>("k") == std::vector<double>{1100.0, 1.0});
    REQUIRE(count_rows(path, "SELECT count(*) FROM rl_log") ==
            1000 - SqliteStore::kLogTrimPerDecision + 1);
    REQUIRE(store.erase<SlidingWindow>("k"));
    REQUIRE(count_rows(path, "SELECT count(*) FROM rl_log") == 0);
    REQUIRE(store.size() == 0);
}

TEST_CASE("sqlite store: a sliding log is a blob up to kLogInlineEntries, then rows",
          "[sqlite_store]") {
    TempDir dir;
    const std::string path = dir.file("rl.db");
    SqliteStore store(path, options());
    MemoryStore memory;
    const auto p = SlidingWindow::make_params({1000, 100.0});
    const int inline_max = SqliteStore::kLogInlineEntries;
    for (int i = 0; i < inline_max + 10; ++i) {
        const double t = 1000.0 + i * 0.5;
        REQUIRE(same(store.apply<SlidingWindow>("k", t, 1 + i % 3, p, Operation::consume),
                     memory.apply<SlidingWindow>("k", t, 1 + i % 3, p, Operation::consume)));
        REQUIRE(store.snapshot<SlidingWindow>("k") == memory.snapshot<SlidingWindow>("k"));
        // Entry i+1 makes i+1 entries: a blob (algo 1) while they fit, then a head (101).
        const bool rows = i + 1 > inline_max;
        REQUIRE(count_rows(path, "SELECT count(*) FROM rl_state WHERE algo = 1") == !rows);
        REQUIRE(count_rows(path, "SELECT count(*) FROM rl_state WHERE algo = 101") == rows);
    }
    REQUIRE(count_rows(path, "SELECT count(*) FROM rl_log") == inline_max + 10);
}

TEST_CASE("sqlite store: a long sliding-log blob from an older file moves to rows on use",
          "[sqlite_store]") {
    TempDir dir;
    const std::string path = dir.file("rl.db");
    SqliteStore store(path, options());
    MemoryStore memory;
    const auto p = SlidingWindow::make_params({500, 100.0});
    // 200 entries [t, n] as SlidingWindow::encode wrote them, and the same log in memory.
    std::vector<double> blob;
    for (int i = 0; i < 200; ++i) {
        const double t = 1000.0 + i * 0.25;
        blob.insert(blob.end(), {t, 2.0});
        REQUIRE(memory.apply<SlidingWindow>("k", t, 2, p, Operation::consume).allowed);
    }
    {
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
        sqlite3_stmt* stmt = nullptr;
        REQUIRE(sqlite3_prepare_v2(db, "INSERT INTO rl_state VALUES(1, 'k', ?1, 1e9)", -1,
                                   &stmt, nullptr) == SQLITE_OK);
        sqlite3_bind_blob(stmt, 1, blob.data(), static_cast<int>(blob.size() * sizeof(double)),
                          SQLITE_STATIC);
        REQUIRE(sqlite3_step(stmt) == SQLITE_DONE);
        sqlite3_finalize(stmt);
        sqlite3_close(db);
    }
    REQUIRE(same(store.apply<SlidingWindow>("k", 1100.0, 1, p, Operation::peek),
                 memory.apply<SlidingWindow>("k", 1100.0, 1, p, Operation::peek)));
    REQUIRE(count_rows(path, "SELECT count(*) FROM rl_state WHERE algo = 1") == 1);
    for (double t : {1100.0, 1100.0, 1100.01, 1110.5, 1120.0, 1130.0, 1130.0}) {
        REQUIRE(same(store.apply<SlidingWindow>("k", t, 30, p, Operation::consume),
                     memory.apply<SlidingWindow>("k", t, 30, p, Operation::consume)));
        REQUIRE(store.snapshot<SlidingWindow>("k") == memory.snapshot<SlidingWindow>("k"));
    }
    REQUIRE(count_rows(path, "SELECT count(*) FROM rl_state WHERE algo = 1") == 0);
    REQUIRE(store.size() == 1);  // the head
}
