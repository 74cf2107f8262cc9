#include "cluster_transport.hpp"

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "ratelimiter/store/lua_index.hpp"

namespace ratelimiter::detail {
namespace {

constexpr std::size_t kSlots = 16384;

// CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with.
std::uint16_t crc16(std::string_view data) {
    std::uint16_t crc = 0;
    for (const char ch : data) {
        crc = static_cast<std::uint16_t>(crc ^ (static_cast<unsigned char>(ch) << 8));
        for (int bit = 0; bit < 8; ++bit) {
            crc = (crc & 0x8000U) != 0 ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021U)
                                       : static_cast<std::uint16_t>(crc << 1);
        }
    }
    return crc;
}

// "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381" / "TRYAGAIN ...".
struct Redirection {
    enum class Kind { moved, ask, try_again } kind = Kind::moved;
    std::string host;
    int port = 0;
};

Redirection parse_redirection(const std::string& error, const std::string& fallback_host) {
    Redirection r;
    if (error.rfind("TRYAGAIN", 0) == 0) {
        r.kind = Redirection::Kind::try_again;
        return r;
    }
    r.kind = error.rfind("ASK ", 0) == 0 ? Redirection::Kind::ask : Redirection::Kind::moved;
    const std::size_t space = error.rfind(' ');
    const std::size_t colon = error.rfind(':');
    if (space == std::string::npos || colon == std::string::npos || colon < space) {
        throw BackendError("redis cluster: malformed redirection '" + error + "'");
    }
    r.host = error.substr(space + 1, colon - space - 1);
    if (r.host.empty()) r.host = fallback_host;  // "unknown endpoint": the same host
    r.port = std::atoi(error.c_str() + colon + 1);
    if (r.port <= 0 || r.port > 65535) {
        throw BackendError("redis cluster: malformed redirection '" + error + "'");
    }
    return r;
}

std::string cross_slot_message(const std::vector<std::string>& keys) {
    std::string names;
    for (const auto& k : keys) names += (names.empty() ? "'" : ", '") + k + "'";
    return "the Redis keys of one decision (" + names +
           ") hash to different Redis Cluster slots (CROSSSLOT): their {hash tag} is broken by "
           "a '{' or '}' in the limiter key or key_prefix; keep braces out of keys and "
           "prefixes on a cluster";
}

}  // namespace

std::uint16_t key_hash_slot(std::string_view key) {
    const std::size_t open = key.find('{');
    if (open != std::string_view::npos) {
        const std::size_t close = key.find('}', open + 1);
        if (close != std::string_view::npos && close != open + 1) {
            key = key.substr(open + 1, close - open - 1);
        }
    }
    return static_cast<std::uint16_t>(crc16(key) & (kSlots - 1));
}

ClusterTransport::ClusterTransport(RedisOptions options) : options_(std::move(options)) {
    for (const auto& [host, port] : options_.cluster_nodes) node_at(host, port);
    refresh(true);  // ConfigError if a seed is not in cluster mode; unreachable: later
}

std::shared_ptr<HiredisTransport> ClusterTransport::node_at(const std::string& host, int port) {
    std::lock_guard<std::mutex> lock(mutex_);
    return node_locked(host, port);
}

std::shared_ptr<HiredisTransport> ClusterTransport::node_locked(const std::string& host,
                                                                int port) {
    for (const Node& n : nodes_) {
        if (n.port == port && n.host == host) return n.pool;
    }
    RedisOptions node_options = options_;
    node_options.cluster_nodes.clear();
    node_options.unix_socket.clear();
    node_options.host = host;
    node_options.port = port;
    node_options.db = 0;
    nodes_.push_back(Node{host, port, std::make_shared<HiredisTransport>(node_options)});
    return nodes_.back().pool;
}

void ClusterTransport::mark_stale() {
    std::lock_guard<std::mutex> lock(mutex_);
    stale_ = true;
}

void ClusterTransport::refresh(bool force) {
    const auto interval = std::chrono::microseconds(
        static_cast<std::int64_t>(options_.reconnect_interval * 1e6));
    std::vector<std::pair<std::string, int>> candidates;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!force && !stale_) return;
        if (!force && Clock::now() - last_refresh_ < interval) return;  // no refresh storms
        for (const Node& n : nodes_) candidates.emplace_back(n.host, n.port);
    }
    std::unique_lock<std::mutex> one_at_a_time(refresh_mutex_, std::try_to_lock);
    if (!one_at_a_time.owns_lock()) return;  // another thread is at it: use the current map
    for (const auto& [host, port] : candidates) {
        RedisValue reply;
        try {
            reply = node_at(host, port)->command({"CLUSTER", "SLOTS"});
        } catch (const BackendError&) {
            continue;  // dead or slow node: ask the next one
        }
        if (reply.type == RedisValue::Type::error) {
            if (reply.str.find("cluster support disabled") != std::string::npos) {
                throw ConfigError("redis at " + host + ":" + std::to_string(port) +
                                  " is not in cluster mode (cluster_enabled:0): use "
                                  "redis://host:port for a single server");
            }
            continue;
        }
        if (reply.type != RedisValue::Type::array) continue;
        std::vector<std::int32_t> slots(kSlots, -1);
        std::lock_guard<std::mutex> lock(mutex_);
        for (const RedisValue& range : reply.elements) {
            if (range.type != RedisValue::Type::array || range.elements.size() < 3) continue;
            const RedisValue& master = range.elements[2];
            if (master.type != RedisValue::Type::array || master.elements.size() < 2) continue;
            const std::string node_host = master.elements[0].str.empty() ? host
                                                                         : master.elements[0].str;
            const auto node_port = static_cast<int>(master.elements[1].integer);
            node_locked(node_host, node_port);
            std::int32_t index = -1;
            for (std::size_t i = 0; i < nodes_.size(); ++i) {
                if (nodes_[i].port == node_port && nodes_[i].host == node_host) {
                    index = static_cast<std::int32_t>(i);
                }
            }
            const auto first = std::clamp<std::int64_t>(range.elements[0].integer, 0, kSlots - 1);
            const auto last = std::clamp<std::int64_t>(range.elements[1].integer, 0, kSlots - 1);
            for (std::int64_t s = first; s <= last; ++s) slots[static_cast<std::size_t>(s)] = index;
        }
        slots_.swap(slots);
        stale_ = false;
        last_refresh_ = Clock::now();
        return;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    last_refresh_ = Clock::now();  // nobody answered: try again after the interval
}

std::shared_ptr<HiredisTransport> ClusterTransport::owner(std::uint16_t slot) {
    refresh(false);
    std::lock_guard<std::mutex> lock(mutex_);
    if (slots_.empty()) {
        throw BackendConnectionError("redis cluster: no node answered CLUSTER SLOTS (is the "
                                     "cluster reachable?)");
    }
    const std::int32_t index = slots_[slot];
    if (index < 0) {
        stale_ = true;
        throw BackendError("redis cluster: slot " + std::to_string(slot) +
                           " is not served by any master (CLUSTERDOWN)");
    }
    return nodes_[static_cast<std::size_t>(index)].pool;
}

template <class Call>
auto ClusterTransport::routed(std::uint16_t slot, const char* what, Call&& call)
    -> decltype(call(std::declval<HiredisTransport&>(), false, std::declval<std::string*>())) {
    const auto deadline = Clock::now() + std::chrono::microseconds(static_cast<std::int64_t>(
                                             options_.command_timeout * 1e6));
    std::shared_ptr<HiredisTransport> node = owner(slot);
    bool asking = false;
    for (int attempt = 1;; ++attempt) {
        std::string redirect;
        try {
            auto result = call(*node, asking, &redirect);
            if (redirect.empty()) return result;
        } catch (const BackendConnectionError&) {
            mark_stale();  // a master died: its replica's promotion shows in the next map
            throw;
        }
        if (attempt >= kMaxRedirections || Clock::now() >= deadline) {
            throw BackendError(std::string("redis cluster: ") + what + " still redirected after " +
                               std::to_string(attempt) + " tries (last: " + redirect + ")");
        }
        const Redirection r = parse_redirection(redirect, node->host());
        if (r.kind == Redirection::Kind::try_again) {  // a slot in migration: shortly again
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            continue;
        }
        if (r.kind == Redirection::Kind::moved && attempt > 1) {  // owners still disagree
            std::this_thread::sleep_for(std::chrono::milliseconds(attempt));
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            std::shared_ptr<HiredisTransport> target = node_locked(r.host, r.port);
            if (r.kind == Redirection::Kind::moved) {
                for (std::size_t i = 0; i < nodes_.size(); ++i) {
                    if (nodes_[i].pool == target && !slots_.empty()) {
                        slots_[slot] = static_cast<std::int32_t>(i);
                    }
                }
                stale_ = true;  // other slots may have moved too: reload the map soon
            }
            node = std::move(target);
        }
        asking = r.kind == Redirection::Kind::ask;
    }
}

std::vector<std::string> ClusterTransport::eval(AlgorithmId algorithm, const std::string& key,
                                                const std::vector<std::string>& args) {
    const lua::Script& script = lua::script(algorithm);
    return routed(key_hash_slot(key), script.name,
                  [&](HiredisTransport& node, bool asking, std::string* redirect) {
                      return node.run_script_routed(script, {key}, args, asking, redirect);
                  });
}

std::vector<std::string> ClusterTransport::eval_multi(AlgorithmId algorithm,
                                                      const std::vector<std::string>& keys,
                                                      const std::vector<std::string>& args) {
    const lua::Script& script = lua::multi_script(algorithm);
    if (keys.empty()) throw BackendError("redis cluster: a multi-limit call without keys");
    const std::uint16_t slot = key_hash_slot(keys[0]);
    for (const auto& k : keys) {
        if (key_hash_slot(k) != slot) throw ConfigError(cross_slot_message(keys));
    }
    return routed(slot, script.name,
                  [&](HiredisTransport& node, bool asking, std::string* redirect) {
                      return node.run_script_routed(script, keys, args, asking, redirect);
                  });
}

// One pipeline per master (HiredisTransport::eval_each), masters one after the other; a key
// redirected meanwhile (MOVED/ASK) is decided again on its own through eval().
std::vector<ScriptReply> ClusterTransport::eval_many(AlgorithmId algorithm,
                                                     const std::vector<std::string>& keys,
                                                     const std::vector<std::string>& args) {
    std::vector<ScriptReply> out(keys.size());
    std::vector<std::pair<std::shared_ptr<HiredisTransport>, std::vector<std::size_t>>> groups;
    for (std::size_t i = 0; i < keys.size(); ++i) {
        std::shared_ptr<HiredisTransport> node;
        try {
            node = owner(key_hash_slot(keys[i]));
        } catch (const BackendError& e) {
            out[i].error = e.what();
            continue;
        }
        auto group = std::find_if(groups.begin(), groups.end(),
                                  [&](const auto& g) { return g.first == node; });
        if (group == groups.end()) {
            groups.emplace_back(node, std::vector<std::size_t>{});
            group = groups.end() - 1;
        }
        group->second.push_back(i);
    }
    for (auto& [node, indices] : groups) {
        std::vector<std::string> group_keys;
        group_keys.reserve(indices.size());
        for (std::size_t i : indices) group_keys.push_back(keys[i]);
        std::vector<ScriptReply> replies;
        try {
            replies = node->eval_each(algorithm, group_keys, args);
        } catch (const BackendError& e) {
            if (dynamic_cast<const BackendConnectionError*>(&e) != nullptr) mark_stale();
            for (std::size_t i : indices) out[i].error = e.what();
            continue;
        }
        for (std::size_t j = 0; j < indices.size(); ++j) {
            const std::size_t i = indices[j];
            if (HiredisTransport::is_redirection(replies[j].error)) {
                try {
                    out[i].fields = eval(algorithm, keys[i], args);
                } catch (const BackendError& e) {
                    out[i].error = e.what();
                }
            } else {
                out[i] = std::move(replies[j]);
            }
        }
    }
    return out;
}

void ClusterTransport::del(const std::string& key) {
    const RedisValue v = command({"DEL", key});
    if (v.type == RedisValue::Type::error) throw BackendError("redis DEL failed: " + v.str);
}

// Routed by argv[1] (the key of every command the backend sends); keyless commands go to
// the master of slot 0.
RedisValue ClusterTransport::command(const std::vector<std::string>& argv) {
    if (argv.empty()) throw BackendError("redis command: empty argument list");
    const std::uint16_t slot = argv.size() >= 2 ? key_hash_slot(argv[1]) : 0;
    return routed(slot, argv[0].c_str(),
                  [&](HiredisTransport& node, bool asking, std::string* redirect) {
                      RedisValue v = node.command_routed(argv, asking);
                      if (v.type == RedisValue::Type::error &&
                          HiredisTransport::is_redirection(v.str)) {
                          *redirect = v.str;
                      }
                      return v;
                  });
}

void ClusterTransport::close() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const Node& n : nodes_) n.pool->close();
    stale_ = true;
}

}  // namespace ratelimiter::detail
