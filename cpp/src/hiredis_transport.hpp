// RedisTransport over hiredis: a pool of blocking connections, one per concurrent caller.
// Private to the core (RedisStore's default transport).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ratelimiter/store/redis_store.hpp"

namespace ratelimiter::lua {
struct Script;
}
struct redisContext;
struct redisReply;

namespace ratelimiter::detail {

class HiredisTransport final : public RedisTransport {
public:
    explicit HiredisTransport(RedisOptions options);
    ~HiredisTransport() override;

    std::vector<std::string> eval(AlgorithmId algorithm, const std::string& key,
                                  const std::vector<std::string>& args) override;
    std::vector<std::string> eval_multi(AlgorithmId algorithm, const std::vector<std::string>& keys,
                                        const std::vector<std::string>& args) override;
    // The batch script over chunks of kBatchKeys keys (one Redis only: see eval_each).
    std::vector<ScriptReply> eval_many(AlgorithmId algorithm, const std::vector<std::string>& keys,
                                       const std::vector<std::string>& args) override;
    // The single-key script once per key, pipelined: what a cluster node gets (a batch
    // script's keys would span slots).
    std::vector<ScriptReply> eval_each(AlgorithmId algorithm, const std::vector<std::string>& keys,
                                       const std::vector<std::string>& args);
    // Keys per batch script call: large enough that the per-call toll is amortised, small
    // enough that one call blocks the server for well under a millisecond.
    static constexpr std::size_t kBatchKeys = 100;
    void del(const std::string& key) override;
    RedisValue command(const std::vector<std::string>& argv) override;
    void close() override;

    // For ClusterTransport: the script call with ASKING pipelined in front of it if `asking`;
    // a MOVED/ASK error reply is stored in `*redirect` (and {} returned) instead of thrown.
    std::vector<std::string> run_script_routed(const lua::Script& script,
                                               const std::vector<std::string>& keys,
                                               const std::vector<std::string>& args,
                                               bool asking, std::string* redirect);
    // A command, ASKING first if `asking`; error replies (MOVED, ASK...) are returned.
    RedisValue command_routed(const std::vector<std::string>& argv, bool asking);
    // Whether an error reply sends the call elsewhere or later: a cluster redirection
    // ("MOVED <slot> <host>:<port>", "ASK ...") or TRYAGAIN (a slot in migration).
    static bool is_redirection(const std::string& error);
    const std::string& host() const { return options_.host; }

private:
    struct ContextDeleter {
        void operator()(redisContext* c) const;
    };
    struct ReplyDeleter {
        void operator()(redisReply* r) const;
    };
    using Connection = std::unique_ptr<redisContext, ContextDeleter>;
    using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

    // A connection borrowed from the pool. Returned by give_back() after a complete round
    // trip; dropped (closed) if anything went wrong on it, since its state is then unknown.
    struct Lease {
        Connection connection;
        std::uint64_t generation = 0;
    };

    // EVALSHA of `script` (EVAL in the same round trip on NOSCRIPT).
    std::vector<std::string> run_script(const lua::Script& script,
                                        const std::vector<std::string>& keys,
                                        const std::vector<std::string>& args);
    // The fields of a script's (non-error) reply: one binary string or a list of strings.
    static std::vector<std::string> script_fields(const lua::Script& script,
                                                  const redisReply* reply);
    // FUNCTION LOAD of lua::kLibrary on `c` (one round trip); sets functions_: true if the
    // library is there now (loaded, or "already exists"), false on any other reply.
    void load_library(redisContext* c);
    Lease acquire();
    void give_back(Lease lease);
    Connection connect();
    // Sends one command and reads its reply. Throws on I/O errors and timeouts (the
    // connection must then be dropped); error replies are returned, not thrown.
    Reply round_trip_asking(redisContext* c, bool asking, const std::vector<const char*>& argv,
                            const std::vector<std::size_t>& lengths);
    Reply round_trip(redisContext* c, const std::vector<const char*>& argv,
                     const std::vector<std::size_t>& lengths);
    [[noreturn]] void throw_io_error(redisContext* c, const char* what);
    std::string address() const;

    RedisOptions options_;
    // Whether single-key decisions are FCALLs of the function library (Redis >= 7, Valkey)
    // rather than EVALSHA of scripts: set by every connect (an older server, or an ACL
    // without FUNCTION, leaves scripts in use).
    std::atomic<bool> functions_{false};
    std::mutex mutex_;
    std::vector<Connection> idle_;
    std::uint64_t generation_ = 0;  // bumped by close(): older leases are not pooled again
    std::chrono::steady_clock::time_point connect_blocked_until_{};
};

}  // namespace ratelimiter::detail
