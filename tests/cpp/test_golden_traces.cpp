// The golden traces (tests/traces/<algorithm>.csv, format in tests/traces/generate.py) on the
// C++ stores: every row's allowed, remaining, retry_after and reset_after must match exactly
// (the files hold shortest round-trip decimals; no tolerance). tests/python/
// test_golden_traces.py runs the same files on every Python-facing store.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <unistd.h>

#include "catch.hpp"
#include "ratelimiter/algorithm/all.hpp"
#include "ratelimiter/store/memory_store.hpp"
#include "ratelimiter/store/sqlite_store.hpp"

#ifndef RATELIMITER_TRACES_DIR
#error "CMakeLists.txt passes RATELIMITER_TRACES_DIR (tests/traces) to the test binary"
#endif

using namespace ratelimiter;
namespace fs = std::filesystem;

namespace {

using Row = std::map<std::string, std::string>;

std::vector<std::string> split(const std::string& line) {
    std::vector<std::string> cells;
    std::stringstream in(line);
    std::string cell;
    while (std::getline(in, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.emplace_back();
    return cells;
}

std::vector<Row> load(const std::string& algorithm) {
    const fs::path path = fs::path(RATELIMITER_TRACES_DIR) / (algorithm + ".csv");
    std::ifstream in(path);
    REQUIRE(in.good());
    std::vector<std::string> columns;
    std::vector<Row> rows;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        const auto cells = split(line);
        if (columns.empty()) {
            columns = cells;
            continue;
        }
        REQUIRE(cells.size() == columns.size());
        Row row;
        for (std::size_t i = 0; i < cells.size(); ++i) row[columns[i]] = cells[i];
        rows.push_back(std::move(row));
    }
    REQUIRE(!rows.empty());
    return rows;
}

double num(const Row& row, const std::string& name) { return std::strtod(row.at(name).c_str(), nullptr); }

std::optional<double> opt(const Row& row, const std::string& name) {
    auto it = row.find(name);
    if (it == row.end() || it->second.empty()) return std::nullopt;
    return std::strtod(it->second.c_str(), nullptr);
}

// The row's limit, window and algorithm parameters (empty cell: the default).
template <class Algo>
typename Algo::Params params_of(const Row& row) {
    typename Algo::Spec spec{};
    spec.limit = std::stoll(row.at("limit"));
    spec.window = num(row, "window");
    if constexpr (std::is_same_v<Algo, TokenBucket>) spec.refill_rate = opt(row, "refill_rate");
    if constexpr (std::is_same_v<Algo, LeakyBucket>) spec.leak_rate = opt(row, "leak_rate");
    if constexpr (std::is_same_v<Algo, Gcra>) {
        if (auto burst = opt(row, "burst")) spec.burst = static_cast<std::int64_t>(*burst);
    }
    if constexpr (std::is_same_v<Algo, Adaptive>) {
        if (auto m = opt(row, "burst_multiplier")) spec.burst_multiplier = *m;
        spec.adaptive_window = opt(row, "adaptive_window");
        if (auto penalty = opt(row, "penalty")) spec.penalty = *penalty;
    }
    return Algo::make_params(spec);
}

// The traces hold what Python sees: a rejection's `now + retry_after` moved 4 ulps later
// (the core's `reported`, common.hpp wait_until_representable). A store's decision before
// that nudge is accepted when nudging it gives the trace's value.
double nudged(double now, double wait) {
    if (!std::isfinite(wait)) return wait;
    double at = now + wait;
    for (int i = 0; i < 4; ++i) at = std::nextafter(at, HUGE_VAL);
    return std::max(wait, at - now);
}

template <class Algo, class Store>
void replay(Store& store, const std::string& algorithm) {
    for (const Row& row : load(algorithm)) {
        const double now = num(row, "now");
        const bool peek = row.at("op") == "peek";
        const Decision d = store.template apply<Algo>(
            row.at("scenario"), now, peek ? 1 : std::stoll(row.at("cost")), params_of<Algo>(row),
            peek ? Operation::peek : Operation::consume);
        INFO(algorithm << " " << row.at("scenario") << " now=" << row.at("now") << " "
                       << row.at("op") << " cost=" << row.at("cost"));
        CHECK(d.allowed == (row.at("allowed") == "1"));
        CHECK(d.remaining == std::stoll(row.at("remaining")));
        const double retry = num(row, "retry_after");
        CHECK((d.retry_after == retry || nudged(now, d.retry_after) == retry));
        CHECK(d.reset_after == num(row, "reset_after"));
    }
}

template <class Algo>
void replay_everywhere(const std::string& algorithm) {
    SECTION("memory store") {
        MemoryStore store;
        replay<Algo>(store, algorithm);
    }
    SECTION("sqlite store on a file") {
        const fs::path path = fs::temp_directory_path() / ("rl-golden-" + std::to_string(getpid()) + "-" + algorithm + ".db");
        fs::remove(path);
        {
            SqliteStore store(path.string(), SqliteStore::Options{});
            replay<Algo>(store, algorithm);
        }
        std::error_code ec;
        for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix, ec);
    }
}

}  // namespace

// Every algorithm in AllAlgorithms replays tests/traces/<name>.csv (a new algorithm needs
// its trace file).
TEST_CASE("golden trace: every algorithm", "[golden]") {
    for_each_algorithm([](auto tag) {
        using Algo = typename decltype(tag)::type;
        INFO(Algo::name);
        replay_everywhere<Algo>(Algo::name);
    });
}
