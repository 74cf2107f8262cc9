// The memory store's single-call path without Python: what bench/bench_core.py's "10,000
// keys" rows time, minus the binding. One MemoryStore::apply per call, keys round-robin,
// limit 10**9 and window 1e9 (every call admits), the wall clock read per call as the
// binding does. For perf (`perf stat` / `perf record`) and A/B runs of the algorithm headers:
//
//   g++ -O2 -std=c++17 -Icpp/include bench/micro/single_step.cpp cpp/src/memory_store.cpp \
//       -o /tmp/single_step -lpthread
//   /tmp/single_step [algorithm] [keys] [calls per key] [rounds]
//
// Prints the best round's ns/call (rounds as the Python bench: each continues the last).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "ratelimiter/store/memory_store.hpp"

using namespace ratelimiter;

namespace {

double wall_now() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

template <class Algo>
double run(const typename Algo::Params& params, std::size_t nkeys, std::size_t per_key,
           int rounds) {
    MemoryStore store;
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < nkeys; ++i) keys.push_back("user:" + std::to_string(i));
    double best = 1e30;
    double sink = 0.0;
    for (int r = 0; r < rounds; ++r) {
        const auto start = std::chrono::steady_clock::now();
        for (std::size_t c = 0; c < per_key; ++c) {
            for (const std::string& key : keys) {
                const Decision d = store.apply<Algo>(key, wall_now(), 1, params,
                                                     Operation::consume);
                sink += d.remaining;
            }
        }
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
        const double per_call = took.count() / static_cast<double>(per_key * nkeys);
        if (std::getenv("VERBOSE")) std::printf("  round %d: %.1f ns/call\n", r, 1e9 * per_call);
        best = std::min(best, per_call);
    }
    if (sink == 42.0) std::puts("");
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    const char* algo = argc > 1 ? argv[1] : "sliding_window";
    const std::size_t nkeys = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 10000;
    const std::size_t per_key = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 30;
    const int rounds = argc > 4 ? std::atoi(argv[4]) : 7;
    const std::int64_t limit = 1000000000;
    const double window = 1e9;
    double t = 0.0;
    if (!std::strcmp(algo, "sliding_window")) {
        t = run<SlidingWindow>(SlidingWindow::make_params({limit, window}), nkeys, per_key, rounds);
    } else if (!std::strcmp(algo, "adaptive")) {
        Adaptive::Spec spec;
        spec.limit = limit;
        spec.window = window;
        t = run<Adaptive>(Adaptive::make_params(spec), nkeys, per_key, rounds);
    } else if (!std::strcmp(algo, "token_bucket")) {
        t = run<TokenBucket>(TokenBucket::make_params({limit, window}), nkeys, per_key, rounds);
    } else {
        std::fprintf(stderr, "unknown algorithm %s\n", algo);
        return 2;
    }
    std::printf("%s %zu keys: %.1f ns/call\n", algo, nkeys, 1e9 * t);
    return 0;
}
