// Redis store: each decision is one EVALSHA of the algorithm's Lua script (cpp/lua/), which
// runs the same arithmetic as the C++ step function atomically inside Redis.
//
// Keys: <key_prefix>{<limiter key>}:<algorithm>. The braces are a Redis Cluster hash tag, so
// all of one limiter key's state lives in one slot. Every key written carries a PEXPIRE.
//
// Failure policy (on_error): raise → BackendError / BackendConnectionError; allow / deny →
// a Decision with `fallback` set (allowed or not), counted in counters(). Any failure to
// obtain a decision (unreachable, timeout, server error) is handled by the policy.
//
// Rejection cache (optional, set_rejection_cache): rejections Redis gave are remembered until
// the key could next admit that cost, and further such requests are answered locally
// (store/rejection_cache.hpp). Single-key decisions and batches use it; multi-limit
// decisions (apply_multi) bypass it.
//
// Thread-safety: every public method may be called from any thread concurrently, except
// set_rejection_cache (once, before the store is shared).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ratelimiter/algorithm/all.hpp"
#include "ratelimiter/error.hpp"
#include "ratelimiter/result.hpp"
#include "ratelimiter/store/multi.hpp"
#include "ratelimiter/store/on_error.hpp"
#include "ratelimiter/store/operation.hpp"
#include "ratelimiter/store/rejection_cache.hpp"

namespace ratelimiter {


// Where to connect and how long to wait.
struct RedisOptions {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string unix_socket;  // non-empty: connect to this path instead of host:port
    int db = 0;
    std::string username;  // ACL user (Redis 6+); empty: AUTH with the password only
    std::string password;
    double connect_timeout = 0.25;  // seconds
    double command_timeout = 0.5;   // seconds, per round trip
    // After a failed connect, calls fail at once for this long instead of each waiting for
    // a connect timeout against a dead host.
    double reconnect_interval = 0.1;
    std::size_t max_idle_connections = 16;  // per node
    // Non-empty: a Redis Cluster reached through these seed nodes (host/port/unix_socket/db
    // are then unused); calls go to the master of their key's slot, MOVED/ASK followed.
    std::vector<std::pair<std::string, int>> cluster_nodes;
};

// A reply from Redis, for the generic command() API (primitives, tests, benchmarks).
struct RedisValue {
    enum class Type { nil, integer, string, status, array, error };
    Type type = Type::nil;
    std::int64_t integer = 0;
    std::string str;  // string, status and error text
    std::vector<RedisValue> elements;
};

// One script call's outcome in a pipelined batch: the reply's fields (as eval returns them),
// or, if that call failed on the server (an error reply), its error text.
struct ScriptReply {
    std::vector<std::string> fields;
    std::string error;  // non-empty: this call failed
};

// How commands reach Redis: hiredis connections (RedisStore's default), or anything else
// (the Python binding runs scripts through a user's redis-py client). Implementations throw
// BackendConnectionError when Redis cannot be reached, BackendError for any other failure.
class RedisTransport {
public:
    virtual ~RedisTransport() = default;
    // Runs script `algorithm` with KEYS[1] = key and ARGV = args (EVALSHA; on NOSCRIPT the
    // script is loaded and run again, so the caller never sees NOSCRIPT). Returns the reply:
    // one element (a binary reply) or the elements of a list reply, as strings.
    virtual std::vector<std::string> eval(AlgorithmId algorithm, const std::string& key,
                                          const std::vector<std::string>& args) = 0;
    // The same for the algorithm's multi-limit script (cpp/lua/multi/), KEYS = keys.
    virtual std::vector<std::string> eval_multi(AlgorithmId algorithm,
                                                const std::vector<std::string>& keys,
                                                const std::vector<std::string>& args) = 0;
    // The single-key script once per key, every call with the same ARGV, pipelined: one
    // round trip per node instead of one per key. A failed round trip throws (as eval); an
    // error reply fails only its own key. The default runs eval key by key.
    virtual std::vector<ScriptReply> eval_many(AlgorithmId algorithm,
                                               const std::vector<std::string>& keys,
                                               const std::vector<std::string>& args);
    virtual void del(const std::string& key) = 0;
    // Any command (argv[0] is its name).
    virtual RedisValue command(const std::vector<std::string>& argv) = 0;
    virtual void close() {}
    // Whether replies may be binary strings (else the scripts format numbers as text, for
    // clients that decode every reply as UTF-8).
    virtual bool binary_replies() const { return true; }
};

// Counts of decisions made by the on_error policy instead of by Redis.
using RedisCounters = FallbackCounters;

class RedisStore {
public:
    static constexpr const char* kDefaultKeyPrefix = "rl:";

    // Native store: a pool of hiredis connections to `options`. Does not connect yet.
    RedisStore(RedisOptions options, std::string key_prefix, bool use_server_time,
               OnError on_error);
    // Store over another transport (e.g. a Python client).
    RedisStore(std::unique_ptr<RedisTransport> transport, std::string key_prefix,
               bool use_server_time, OnError on_error);
    RedisStore(const RedisStore&) = delete;
    RedisStore& operator=(const RedisStore&) = delete;
    ~RedisStore();

    // Runs one step of Algo on `key` (already including the limiter's prefix) in one
    // EVALSHA. `now` is used only in client-clock mode (use_server_time == false).
    template <class Algo>
    Decision apply(std::string_view key, double now, std::int64_t cost,
                   const typename Algo::Params& params, Operation op,
                   const StepInputOf<Algo>& input = {}) {
        std::vector<std::string> args;
        args.reserve(16);
        append_call_args(args, use_server_time_, now, op == Operation::peek ? 1 : cost, op,
                         transport_->binary_replies());
        append_step_params<Algo>(args, params, input);
        return decide(Algo::id, key, args);
    }

    // One step of Algo on each of `keys` (limiter prefix included), at one `now`, pipelined
    // (RedisTransport::eval_many): out[i] is keys[i]'s decision. A key whose call failed gets
    // the on_error answer (or BackendError under "raise", after the whole batch ran).
    template <class Algo>
    void apply_many(const std::vector<std::string>& keys, double now, std::int64_t cost,
                    const typename Algo::Params& params, Decision* out) {
        std::vector<std::string> args;
        args.reserve(16);
        append_call_args(args, use_server_time_, now, cost, Operation::consume,
                         transport_->binary_replies());
        append_params(args, params);
        std::vector<std::string> storage_keys;
        storage_keys.reserve(keys.size());
        for (const std::string& key : keys) storage_keys.push_back(storage_key(key, Algo::name));
        decide_many(Algo::id, storage_keys, args, out);
    }

    // Several limits of one key at once (MultiRateLimiter): one EVALSHA of the algorithm's
    // multi script over every limit's state key, all in the hash tag {key}. signatures[i]
    // names limit i's state. See store/multi.hpp for `op`.
    template <class Algo>
    bool apply_multi(std::string_view key, const std::vector<std::string>& signatures,
                     const typename Algo::Params* params, const std::int64_t* costs, double now,
                     MultiOp op, Decision* out) {
        std::vector<std::string> keys;
        keys.reserve(signatures.size());
        for (const std::string& sig : signatures) {
            keys.push_back(multi_storage_key(key_prefix_, key, Algo::name, sig));
        }
        std::vector<std::string> args;
        args.reserve(4 + 4 * signatures.size());
        append_multi_call_args(args, use_server_time_, now, op, transport_->binary_replies());
        for (std::size_t i = 0; i < signatures.size(); ++i) {
            args.push_back(std::to_string(costs[i]));
            append_params(args, params[i]);
        }
        return decide_multi(Algo::id, keys, args, out);
    }
    template <class Algo>
    void erase_multi(std::string_view key, const std::vector<std::string>& signatures) {
        for (const std::string& sig : signatures) {
            erase_key(multi_storage_key(key_prefix_, key, Algo::name, sig));
        }
    }
    // "<key_prefix>{<key>}:<algorithm>:<signature>": one hash tag for all of a key's limits.
    static std::string multi_storage_key(std::string_view key_prefix, std::string_view key,
                                         const char* algorithm, std::string_view signature);
    // ARGV[1..4] of a multi script (cpp/lua/multi/_driver.lua); then per limit its cost and
    // append_params.
    static void append_multi_call_args(std::vector<std::string>& args, bool use_server_time,
                                       double now, MultiOp op, bool binary_reply);
    // Decodes a multi script reply into out[0..n); returns whether the request was admitted.
    static bool parse_multi_reply(AlgorithmId algorithm, std::size_t n,
                                  const std::vector<std::string>& reply, Decision* out);

    // Forgets `key` for Algo (DEL). Errors follow on_error only for "raise"; a failed reset
    // under allow/deny is counted and ignored. Returns true.
    template <class Algo>
    bool erase(std::string_view key) {
        return erase_key(storage_key(key, Algo::name));
    }

    // "<key_prefix>{<key>}:<algorithm>".
    std::string storage_key(std::string_view key, const char* algorithm) const;

    // A raw command, bypassing on_error (errors always raise).
    RedisValue command(const std::vector<std::string>& argv);
    bool ping();
    void close();

    RedisCounters counters() const;
    // Answer known rejections locally (nullptr: every decision is a round trip). Call once,
    // before the store is shared between threads.
    void set_rejection_cache(std::shared_ptr<RejectionCache> cache) {
        rejection_cache_ = std::move(cache);
    }
    const std::shared_ptr<RejectionCache>& rejection_cache() const { return rejection_cache_; }
    const std::string& key_prefix() const { return key_prefix_; }
    bool use_server_time() const { return use_server_time_; }
    OnError on_error() const { return on_error_; }

    // The pieces of one decision, public so that other front ends (the asyncio backend)
    // run the exact same script call and read the reply the same way.
    // ARGV[1..4] of every script (see cpp/lua/_common.lua); then append_params for the rest.
    static void append_call_args(std::vector<std::string>& args, bool use_server_time,
                                 double now, std::int64_t cost, Operation op, bool binary_reply);
    static void append_params(std::vector<std::string>& args, const FixedWindow::Params& p);
    static void append_params(std::vector<std::string>& args, const SlidingWindow::Params& p);
    static void append_params(std::vector<std::string>& args,
                              const SlidingWindowCounter::Params& p);
    static void append_params(std::vector<std::string>& args, const TokenBucket::Params& p);
    static void append_params(std::vector<std::string>& args, const LeakyBucket::Params& p);
    // The adaptive script's last argument is the per-call load ('' = the key's own sensor).
    static void append_params(std::vector<std::string>& args, const Adaptive::Params& p,
                              const Adaptive::StepInput& external_load = std::nullopt);
    static void append_params(std::vector<std::string>& args, const Gcra::Params& p);
    // append_params with the algorithm's per-call input, for an algorithm that takes one.
    template <class Algo>
    static void append_step_params(std::vector<std::string>& args,
                                   const typename Algo::Params& p,
                                   const StepInputOf<Algo>& input) {
        if constexpr (kTakesStepInput<Algo>) {
            append_params(args, p, input);
        } else {
            (void)input;
            append_params(args, p);
        }
    }
    // Decodes a script reply (binary or text); throws BackendError on anything malformed.
    static Decision parse_reply(AlgorithmId algorithm, const std::vector<std::string>& reply);
    // A rejection cache's answer in reply form, for front ends that read every answer with
    // parse_reply (the asyncio backend): the text fields, then kCachedReplyMarker, which no
    // script sends; parse_reply sets Decision::cached for it.
    static std::vector<std::string> cached_reply(AlgorithmId algorithm, const Decision& d);
    static constexpr const char* kCachedReplyMarker = "cached";

private:
    Decision decide(AlgorithmId algorithm, std::string_view key,
                    const std::vector<std::string>& args);
    void decide_many(AlgorithmId algorithm, const std::vector<std::string>& keys,
                     const std::vector<std::string>& args, Decision* out);
    bool decide_multi(AlgorithmId algorithm, const std::vector<std::string>& keys,
                      const std::vector<std::string>& args, Decision* out);
    bool erase_key(const std::string& key);
    Decision fallback(const BackendError& error);

    std::unique_ptr<RedisTransport> transport_;
    std::string key_prefix_;
    bool use_server_time_;
    OnError on_error_;
    std::atomic<std::uint64_t> errors_{0};
    std::atomic<std::uint64_t> fallback_allowed_{0};
    std::atomic<std::uint64_t> fallback_denied_{0};
    std::shared_ptr<RejectionCache> rejection_cache_;
};

}  // namespace ratelimiter
