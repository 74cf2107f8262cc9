// RedisTransport over a Redis Cluster: each call goes to the master serving its key's slot,
// on that node's own hiredis pool (HiredisTransport). Private to the core.
//
// - slot: CRC16 (XMODEM) of the key's {hash tag} (the whole key without one) mod 16384;
// - slot map: CLUSTER SLOTS from any known node, loaded on first use and again after a MOVED
//   or a node failing (at most once per reconnect_interval);
// - MOVED → the call is retried on the new owner (and the map reloaded soon); ASK → ASKING +
//   the call on the node named; TRYAGAIN → again shortly; at most kMaxRedirections, and
//   never past the call's command_timeout. While a migration is being committed the two
//   nodes may briefly point at each other: repeated MOVEDs back off a millisecond or more;
// - a node that cannot be reached, CLUSTERDOWN, TRYAGAIN or a slot nobody serves → the
//   error is thrown (BackendConnectionError / BackendError), so on_error decides.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hiredis_transport.hpp"
#include "ratelimiter/store/redis_store.hpp"

namespace ratelimiter::detail {

// The cluster slot of a key (Redis's keyHashSlot).
std::uint16_t key_hash_slot(std::string_view key);

class ClusterTransport final : public RedisTransport {
public:
    static constexpr int kMaxRedirections = 16;  // as redis-py's RedisClusterRequestTTL

    // `options` gives credentials and timeouts; options.cluster_nodes the seed addresses.
    // Loads the slot map at once: a seed that answers but is not in cluster mode is a
    // ConfigError; unreachable seeds are not (the map is loaded on first use).
    explicit ClusterTransport(RedisOptions options);

    std::vector<std::string> eval(AlgorithmId algorithm, const std::string& key,
                                  const std::vector<std::string>& args) override;
    std::vector<std::string> eval_multi(AlgorithmId algorithm, const std::vector<std::string>& keys,
                                        const std::vector<std::string>& args) override;
    std::vector<ScriptReply> eval_many(AlgorithmId algorithm, const std::vector<std::string>& keys,
                                       const std::vector<std::string>& args) override;
    void del(const std::string& key) override;
    RedisValue command(const std::vector<std::string>& argv) override;
    void close() override;

private:
    struct Node {
        std::string host;
        int port = 0;
        std::shared_ptr<HiredisTransport> pool;
    };
    using Clock = std::chrono::steady_clock;

    // The master serving `slot` (refreshing the map first if it is stale or empty).
    std::shared_ptr<HiredisTransport> owner(std::uint16_t slot);
    std::shared_ptr<HiredisTransport> node_at(const std::string& host, int port);
    std::shared_ptr<HiredisTransport> node_locked(const std::string& host, int port);
    // Reloads the slot map from the first node that answers CLUSTER SLOTS.
    void refresh(bool force);
    void mark_stale();
    // Runs `call(node, asking, redirect)` on the slot's owner, following MOVED/ASK.
    template <class Call>
    auto routed(std::uint16_t slot, const char* what, Call&& call) -> decltype(call(
        std::declval<HiredisTransport&>(), false, std::declval<std::string*>()));

    RedisOptions options_;
    std::mutex mutex_;
    std::vector<Node> nodes_;             // every node seen (seeds, slot owners)
    std::vector<std::int32_t> slots_;     // slot → index in nodes_, -1: not served
    bool stale_ = true;
    Clock::time_point last_refresh_{};
    std::mutex refresh_mutex_;            // one refresh at a time
};

}  // namespace ratelimiter::detail
