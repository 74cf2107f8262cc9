#include "ratelimiter/store/redis_store.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#if RATELIMITER_HAVE_HIREDIS
#include "cluster_transport.hpp"
#include "hiredis_transport.hpp"
#endif
#include "ratelimiter/algorithm/all.hpp"
#include "ratelimiter/store/lua_index.hpp"

namespace ratelimiter {
namespace {

// %.17g round-trips every double exactly; the scripts parse it with tonumber (strtod).
void append_number(std::vector<std::string>& args, double value) {
    char buffer[32];
    const int n = std::snprintf(buffer, sizeof buffer, "%.17g", value);
    args.emplace_back(buffer, static_cast<std::size_t>(n));
}

double parse_number(const std::string& text, AlgorithmId algorithm) {
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (text.empty() || end != text.c_str() + text.size()) {
        throw BackendError(std::string("redis ") +
                           kAlgorithmNames[static_cast<std::size_t>(algorithm)] +
                           " script returned a malformed number: '" + text + "'");
    }
    return value;
}

// Number of metadata fields each script returns, by AlgorithmId: as the C++ algorithm fills
// Decision::meta (Algo::kMetadata).
constexpr auto kMetaCount =
    algorithm_table([](auto tag) { return decltype(tag)::type::kMetadata.size(); });
constexpr std::size_t kFixedFields = 5;

}  // namespace

#if RATELIMITER_HAVE_HIREDIS
RedisStore::RedisStore(RedisOptions options, std::string key_prefix, bool use_server_time,
                       OnError on_error)
    : RedisStore(options.cluster_nodes.empty()
                     ? std::unique_ptr<RedisTransport>(
                           std::make_unique<detail::HiredisTransport>(std::move(options)))
                     : std::make_unique<detail::ClusterTransport>(std::move(options)),
                 std::move(key_prefix), use_server_time, on_error) {}
#else
// Built without hiredis (cmake/Dependencies.cmake): the Python RedisBackend never gets here,
// it runs through a redis.Redis client instead (build_info()["hiredis"] is False).
RedisStore::RedisStore(RedisOptions, std::string, bool, OnError) {
    throw BackendError("this build of smart-ratelimiter has no native Redis path (built "
                       "without hiredis); pass a redis.Redis client instead");
}
#endif

RedisStore::RedisStore(std::unique_ptr<RedisTransport> transport, std::string key_prefix,
                       bool use_server_time, OnError on_error)
    : transport_(std::move(transport)),
      key_prefix_(std::move(key_prefix)),
      use_server_time_(use_server_time),
      on_error_(on_error) {}

RedisStore::~RedisStore() = default;

std::string RedisStore::storage_key(std::string_view key, const char* algorithm) const {
    std::string out;
    out.reserve(key_prefix_.size() + key.size() + 24);
    out += key_prefix_;
    out += '{';
    out.append(key.data(), key.size());
    out += "}:";
    out += algorithm;
    return out;
}

void RedisStore::append_call_args(std::vector<std::string>& args, bool use_server_time,
                                  double now, std::int64_t cost, Operation op,
                                  bool binary_reply) {
    if (use_server_time) {
        args.emplace_back();  // '' → the script reads redis TIME
    } else {
        append_number(args, now);
    }
    args.push_back(std::to_string(cost));
    args.emplace_back(op == Operation::peek ? "peek" : "consume");
    args.emplace_back(binary_reply ? "b" : "t");
}

void RedisStore::append_params(std::vector<std::string>& args, const FixedWindow::Params& p) {
    append_number(args, static_cast<double>(p.limit));
    append_number(args, p.window);
}
void RedisStore::append_params(std::vector<std::string>& args, const SlidingWindow::Params& p) {
    append_number(args, static_cast<double>(p.limit));
    append_number(args, p.window);
}
void RedisStore::append_params(std::vector<std::string>& args,
                               const SlidingWindowCounter::Params& p) {
    append_number(args, static_cast<double>(p.limit));
    append_number(args, p.window);
}
void RedisStore::append_params(std::vector<std::string>& args, const TokenBucket::Params& p) {
    append_number(args, p.capacity);
    append_number(args, p.rate);
}
void RedisStore::append_params(std::vector<std::string>& args, const LeakyBucket::Params& p) {
    append_number(args, p.capacity);
    append_number(args, p.rate);
}
void RedisStore::append_params(std::vector<std::string>& args, const Gcra::Params& p) {
    append_number(args, p.burst);
    append_number(args, p.interval);
    append_number(args, p.tau);
}
void RedisStore::append_params(std::vector<std::string>& args, const Adaptive::Params& p,
                               const Adaptive::StepInput& external_load) {
    append_number(args, static_cast<double>(p.limit));
    append_number(args, p.window);
    append_number(args, p.burst_multiplier);
    append_number(args, p.adaptive_window);
    append_number(args, p.high);
    append_number(args, p.low);
    append_number(args, p.penalty);
    append_number(args, p.rate);
    append_number(args, p.max_burst);
    if (external_load) {
        append_number(args, *external_load);
    } else {
        args.emplace_back();  // '' → the script measures the key's own load
    }
}

Decision RedisStore::parse_reply(AlgorithmId algorithm, const std::vector<std::string>& reply) {
    const auto index = static_cast<std::size_t>(algorithm);
    if (index >= kAlgorithmCount) throw BackendError("unknown algorithm id");
    const std::size_t expected = kFixedFields + kMetaCount[index];
    double fields[kFixedFields + kMaxMetadata] = {};
    if (reply.size() == 1 && reply[0].size() == 8 * expected) {
        // Binary: little-endian IEEE doubles, assembled byte by byte (any host byte order).
        for (std::size_t i = 0; i < expected; ++i) {
            std::uint64_t bits = 0;
            for (std::size_t b = 0; b < 8; ++b) {
                bits |= std::uint64_t{static_cast<unsigned char>(reply[0][8 * i + b])} << (8 * b);
            }
            std::memcpy(&fields[i], &bits, sizeof bits);
        }
    } else if (reply.size() == expected ||
               (reply.size() == expected + 1 && reply.back() == kCachedReplyMarker)) {
        for (std::size_t i = 0; i < expected; ++i) fields[i] = parse_number(reply[i], algorithm);
    } else {
        throw BackendError(std::string("redis ") + kAlgorithmNames[index] +
                           " script returned a reply of unexpected shape (" +
                           std::to_string(reply.size()) + " fields)");
    }
    const double remaining = fields[2];
    if (!(remaining >= 0.0 && remaining <= static_cast<double>(kMaxCount))) {
        throw BackendError(std::string("redis ") + kAlgorithmNames[index] +
                           " script returned remaining = " + std::to_string(remaining));
    }
    Decision d;
    d.allowed = fields[0] == 1.0;
    d.insufficient_capacity = fields[1] == 1.0;
    d.remaining = static_cast<std::int64_t>(remaining);
    d.reset_after = fields[3];
    d.retry_after = fields[4];
    d.cached = reply.size() == expected + 1;
    for (std::size_t i = 0; i < kMetaCount[index]; ++i) d.meta[i] = fields[kFixedFields + i];
    return d;
}

std::vector<std::string> RedisStore::cached_reply(AlgorithmId algorithm, const Decision& d) {
    const auto index = static_cast<std::size_t>(algorithm);
    if (index >= kAlgorithmCount) throw BackendError("unknown algorithm id");
    std::vector<std::string> out;
    out.reserve(kFixedFields + kMetaCount[index] + 1);
    append_number(out, d.allowed ? 1.0 : 0.0);
    append_number(out, d.insufficient_capacity ? 1.0 : 0.0);
    append_number(out, static_cast<double>(d.remaining));
    append_number(out, d.reset_after);
    append_number(out, d.retry_after);
    for (std::size_t i = 0; i < kMetaCount[index]; ++i) append_number(out, d.meta[i]);
    out.emplace_back(kCachedReplyMarker);
    return out;
}

Decision RedisStore::decide(AlgorithmId algorithm, std::string_view key,
                            const std::vector<std::string>& args) {
    const std::string skey =
        storage_key(key, kAlgorithmNames[static_cast<std::size_t>(algorithm)]);
    RejectionCache* cache = rejection_cache_.get();
    double sent = 0.0;
    std::uint64_t ticket = 0;
    if (cache != nullptr) {
        sent = RejectionCache::monotonic_now();
        ticket = cache->ticket(skey);
        Decision hit;
        if (cache->lookup(skey, algorithm, args, sent, hit)) return hit;
    }
    try {
        Decision d = parse_reply(algorithm, transport_->eval(algorithm, skey, args));
        if (cache != nullptr) cache->record(skey, algorithm, args, d, sent, ticket);
        return d;
    } catch (const BackendError& e) {
        errors_.fetch_add(1, std::memory_order_relaxed);
        if (on_error_ == OnError::raise) throw;
        return fallback(e);
    }
}

std::vector<ScriptReply> RedisTransport::eval_many(AlgorithmId algorithm,
                                                   const std::vector<std::string>& keys,
                                                   const std::vector<std::string>& args) {
    std::vector<ScriptReply> out(keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) out[i].fields = eval(algorithm, keys[i], args);
    return out;
}

void RedisStore::decide_many(AlgorithmId algorithm, const std::vector<std::string>& all_keys,
                             const std::vector<std::string>& args, Decision* out) {
    if (all_keys.empty()) return;
    // Keys the rejection cache answers are decided here; the rest go to Redis, pipelined.
    RejectionCache* cache = rejection_cache_.get();
    const double sent = cache != nullptr ? RejectionCache::monotonic_now() : 0.0;
    std::vector<std::size_t> asked;  // indices into all_keys sent to Redis
    std::vector<std::string> keys;
    std::vector<std::uint64_t> tickets;
    if (cache != nullptr) {
        for (std::size_t i = 0; i < all_keys.size(); ++i) {
            const std::uint64_t ticket = cache->ticket(all_keys[i]);
            if (cache->lookup(all_keys[i], algorithm, args, sent, out[i])) continue;
            asked.push_back(i);
            keys.push_back(all_keys[i]);
            tickets.push_back(ticket);
        }
        if (keys.empty()) return;
    }
    const std::vector<std::string>& sent_keys = cache != nullptr ? keys : all_keys;
    auto slot = [&](std::size_t j) -> Decision& { return out[cache != nullptr ? asked[j] : j]; };

    const char* name = lua::script(algorithm).name;
    std::vector<ScriptReply> replies;
    try {
        replies = transport_->eval_many(algorithm, sent_keys, args);
        if (replies.size() != sent_keys.size()) {
            throw BackendError(std::string("redis ") + name + " batch: " +
                               std::to_string(replies.size()) + " replies for " +
                               std::to_string(sent_keys.size()) + " keys");
        }
    } catch (const BackendError& e) {  // the batch as a whole: no key was decided by Redis
        errors_.fetch_add(sent_keys.size(), std::memory_order_relaxed);
        if (on_error_ == OnError::raise) throw;
        for (std::size_t j = 0; j < sent_keys.size(); ++j) slot(j) = fallback(e);
        return;
    }
    std::string first_error;
    for (std::size_t j = 0; j < sent_keys.size(); ++j) {
        try {
            if (!replies[j].error.empty()) {
                throw BackendError(std::string("redis ") + name + " script failed: " +
                                   replies[j].error);
            }
            slot(j) = parse_reply(algorithm, replies[j].fields);
            if (cache != nullptr) {
                cache->record(sent_keys[j], algorithm, args, slot(j), sent, tickets[j]);
            }
        } catch (const BackendError& e) {
            errors_.fetch_add(1, std::memory_order_relaxed);
            if (on_error_ == OnError::raise) {
                if (first_error.empty()) first_error = e.what();
                continue;
            }
            slot(j) = fallback(e);
        }
    }
    if (!first_error.empty()) throw BackendError(first_error);
}

std::string RedisStore::multi_storage_key(std::string_view key_prefix, std::string_view key,
                                          const char* algorithm, std::string_view signature) {
    std::string out;
    out.reserve(key_prefix.size() + key.size() + signature.size() + 28);
    out.append(key_prefix.data(), key_prefix.size());
    out += '{';
    out.append(key.data(), key.size());
    out += "}:";
    out += algorithm;
    out += ':';
    out.append(signature.data(), signature.size());
    return out;
}

void RedisStore::append_multi_call_args(std::vector<std::string>& args, bool use_server_time,
                                        double now, MultiOp op, bool binary_reply) {
    if (use_server_time) {
        args.emplace_back();
    } else {
        append_number(args, now);
    }
    args.emplace_back("0");  // per-limit costs follow
    args.emplace_back(op == MultiOp::consume ? "consume" : op == MultiOp::peek ? "peek" : "adjust");
    args.emplace_back(binary_reply ? "b" : "t");
}

// Reply: the admitted flag, then per limit the fields of a single-limit reply (binary: one
// string of doubles; text: a flat list of %.17g strings).
bool RedisStore::parse_multi_reply(AlgorithmId algorithm, std::size_t n,
                                   const std::vector<std::string>& reply, Decision* out) {
    const auto index = static_cast<std::size_t>(algorithm);
    if (index >= kAlgorithmCount) throw BackendError("unknown algorithm id");
    const std::size_t per = kFixedFields + kMetaCount[index];
    const char* name = kAlgorithmNames[index];
    if (reply.size() == 1 && reply[0].size() == 8 * (1 + n * per)) {
        const std::string& raw = reply[0];
        for (std::size_t i = 0; i < n; ++i) {
            out[i] = parse_reply(algorithm, {raw.substr(8 * (1 + i * per), 8 * per)});
        }
    } else if (reply.size() == 1 + n * per) {
        for (std::size_t i = 0; i < n; ++i) {
            const auto first = reply.begin() + static_cast<std::ptrdiff_t>(1 + i * per);
            out[i] = parse_reply(algorithm,
                                 std::vector<std::string>(first, first + static_cast<std::ptrdiff_t>(per)));
        }
    } else {
        throw BackendError(std::string("redis ") + name + " multi script returned a reply of " +
                           "unexpected shape (" + std::to_string(reply.size()) + " fields)");
    }
    // The leading flag is the script's own verdict; every limit's decision says the same.
    bool allowed = true;
    for (std::size_t i = 0; i < n; ++i) allowed = allowed && out[i].allowed;
    return allowed;
}

bool RedisStore::decide_multi(AlgorithmId algorithm, const std::vector<std::string>& keys,
                              const std::vector<std::string>& args, Decision* out) {
    try {
        return parse_multi_reply(algorithm, keys.size(),
                                 transport_->eval_multi(algorithm, keys, args), out);
    } catch (const BackendError& e) {
        errors_.fetch_add(1, std::memory_order_relaxed);
        if (on_error_ == OnError::raise) throw;
        const Decision d = fallback(e);
        for (std::size_t i = 0; i < keys.size(); ++i) out[i] = d;
        return d.allowed;
    }
}

// What on_error answers (store/on_error.hpp), counted.
Decision RedisStore::fallback(const BackendError& /*error*/) {
    (on_error_ == OnError::allow ? fallback_allowed_ : fallback_denied_)
        .fetch_add(1, std::memory_order_relaxed);
    return fallback_decision(on_error_);
}

bool RedisStore::erase_key(const std::string& key) {
    // Before the DEL (no cached answer outlives it) and after (nor one recorded meanwhile).
    if (rejection_cache_) rejection_cache_->invalidate(key);
    try {
        transport_->del(key);
        if (rejection_cache_) rejection_cache_->invalidate(key);
    } catch (const BackendError&) {
        errors_.fetch_add(1, std::memory_order_relaxed);
        if (on_error_ == OnError::raise) throw;
    }
    return true;
}

RedisValue RedisStore::command(const std::vector<std::string>& argv) {
    RedisValue v = transport_->command(argv);
    if (v.type == RedisValue::Type::error) throw BackendError("redis " + argv[0] + ": " + v.str);
    return v;
}

bool RedisStore::ping() {
    try {
        const RedisValue v = transport_->command({"PING"});
        return v.type == RedisValue::Type::status && v.str == "PONG";
    } catch (const BackendError&) {
        return false;
    }
}

void RedisStore::close() { transport_->close(); }

RedisCounters RedisStore::counters() const {
    RedisCounters c;
    c.errors = errors_.load(std::memory_order_relaxed);
    c.fallback_allowed = fallback_allowed_.load(std::memory_order_relaxed);
    c.fallback_denied = fallback_denied_.load(std::memory_order_relaxed);
    return c;
}

}  // namespace ratelimiter
