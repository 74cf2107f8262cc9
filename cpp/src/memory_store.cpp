#include "ratelimiter/store/memory_store.hpp"

#include <algorithm>

namespace ratelimiter {

MemoryStore::MemoryStore(std::size_t max_keys, std::size_t shard_count) : max_keys_(max_keys) {
    if (max_keys == 0) throw ConfigError("max_keys must be a positive integer, got 0");
    // Never more shards than keys, so every shard can hold at least one entry.
    shard_count = std::max<std::size_t>(1, std::min(shard_count, max_keys));
    shards_.reserve(shard_count);
    for (std::size_t i = 0; i < shard_count; ++i) {
        auto shard = std::make_unique<Shard>();
        // Shares of max_keys that add up to exactly max_keys.
        shard->capacity = max_keys / shard_count + (i < max_keys % shard_count ? 1 : 0);
        shard->purge_at_size = std::min<std::size_t>(64, shard->capacity);
        shard->rng.seed(static_cast<unsigned>(i + 1));
        shards_.push_back(std::move(shard));
    }
}

std::size_t MemoryStore::size() const {
    std::size_t total = 0;
    for (const auto& shard : shards_) {
        std::lock_guard<std::mutex> lock(shard->mutex);
        total += shard->size;
    }
    return total;
}

std::uint64_t MemoryStore::evictions() const {
    std::uint64_t total = 0;
    for (const auto& shard : shards_) {
        std::lock_guard<std::mutex> lock(shard->mutex);
        total += shard->evictions;
    }
    return total;
}

std::size_t MemoryStore::purge_shard(Shard& shard, double now) {
    std::size_t removed = 0;
    std::apply(
        [&](auto&... tables) {
            auto purge = [&](auto& table) {
                removed += table.erase_if(
                    [now](const auto& node) { return node.value.fresh_at <= now; });
            };
            (purge(tables), ...);
        },
        shard.tables);
    shard.size -= removed;
    return removed;
}

std::size_t MemoryStore::purge_expired(double now) {
    std::size_t removed = 0;
    for (auto& shard : shards_) {
        std::lock_guard<std::mutex> lock(shard->mutex);
        removed += purge_shard(*shard, now);
    }
    return removed;
}

void MemoryStore::clear() {
    for (auto& shard : shards_) {
        std::lock_guard<std::mutex> lock(shard->mutex);
        std::apply([](auto&... tables) { (tables.clear(), ...); }, shard->tables);
        shard->size = 0;
    }
}

}  // namespace ratelimiter
