// A flat hash table from string keys to small values: the memory store's per-shard table.
//
// Why not std::unordered_map: every lookup there chases a bucket pointer, then a node pointer
// (a separate allocation per key), and C++17 cannot look up a std::string key by string_view.
// Here the key's hash is computed once by the caller (it also picks the shard) and a lookup
// reads one 8-byte slot (a 32-bit fingerprint and an index) then the node it points to.
//
// Layout: `nodes_` is a dense vector of {key, value} (so iteration, purging and eviction
// sampling touch contiguous memory, and a random node is a random index); `slots_` is an
// open-addressing index into it (linear probing, power-of-two size, load ≤ 7/8 counting
// tombstones). Erasing moves the last node into the hole and repoints its slot.
//
// Not thread-safe: the memory store holds the shard's mutex around every call.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ratelimiter {

template <class Value>
class FlatKeyTable {
public:
    using value_type = Value;
    struct Node {
        std::string key;
        Value value;
    };

    // The hash every call takes: computed once per key by the caller. wyhash's construction
    // (final v4, unseeded), written out small: keys are short (a prefix and an id), and
    // std::hash (libstdc++'s out-of-line murmur) was a tenth of a batched decision. Every bit
    // of the result depends on every key byte (a 64x64->128 multiply folded twice), which
    // the shard (low 32 bits), fingerprint (high 32) and slot (a Fibonacci product) rely on.
    // Unseeded, like std::hash: a caller's keys are not an attacker's choice of collisions
    // any more than before.
    static std::uint64_t hash(std::string_view key) {
        constexpr std::uint64_t k0 = 0xa0761d6478bd642full;
        constexpr std::uint64_t k1 = 0xe7037ed1a0b428dbull;
        constexpr std::uint64_t k2 = 0x8ebc6af09c88c6e3ull;
        const char* p = key.data();
        const std::size_t n = key.size();
        std::uint64_t seed = k2;
        std::uint64_t a = 0;
        std::uint64_t b = 0;
        if (n <= 16) {
            if (n >= 4) {  // two overlapping 4-byte reads from each end cover 4..16 bytes
                const std::size_t mid = (n >> 3) << 2;
                a = (read4(p) << 32) | read4(p + mid);
                b = (read4(p + n - 4) << 32) | read4(p + n - 4 - mid);
            } else if (n > 0) {
                a = (std::uint64_t{byte(p[0])} << 16) | (std::uint64_t{byte(p[n >> 1])} << 8) |
                    byte(p[n - 1]);
            }
        } else {
            std::size_t left = n;
            for (; left > 16; left -= 16, p += 16) {
                seed = mix(read8(p) ^ k1, read8(p + 8) ^ seed);
            }
            a = read8(p + left - 16);  // the last 16 bytes (overlapping the loop's, if short)
            b = read8(p + left - 8);
        }
        std::uint64_t hi = 0;
        const std::uint64_t lo = mul128(a ^ k1, b ^ seed, hi);
        return mix(lo ^ k0 ^ n, hi ^ k1);
    }

    // The value stored for `key` (whose hash is `h`), or nullptr.
    Value* find(std::string_view key, std::uint64_t h) {
        const std::size_t s = find_slot(key, h);
        return s == kNotFound ? nullptr : &nodes_[slots_[s].index].value;
    }

    // Batches: start loading what find(key, h) will read, so lookups of several keys overlap
    // their cache misses. prefetch_slot first; prefetch_node once that slot has arrived (it
    // reads the slot to learn which node to fetch). Both are hints: they change nothing.
    void prefetch_slot(std::uint64_t h) const {
        if (!slots_.empty()) __builtin_prefetch(&slots_[home(h)]);
    }
    void prefetch_node(std::uint64_t h) const {
        if (slots_.empty()) return;
        const Slot& slot = slots_[home(h)];
        if (slot.tag == fingerprint(h)) __builtin_prefetch(&nodes_[slot.index]);
    }

    // Inserts `key` (which must be absent) and returns its value.
    Value& insert(std::string_view key, std::uint64_t h, Value value) {
        if (nodes_.size() >= kMaxNodes) throw std::length_error("FlatKeyTable is full");
        if ((nodes_.size() + tombstones_ + 1) * 8 > slots_.size() * 7) grow();
        const std::size_t mask = slots_.size() - 1;
        std::size_t s = home(h);
        while (slots_[s].tag > kTombstone) s = (s + 1) & mask;
        if (slots_[s].tag == kTombstone) --tombstones_;
        slots_[s] = Slot{fingerprint(h), static_cast<std::uint32_t>(nodes_.size())};
        nodes_.push_back(Node{std::string(key), std::move(value)});
        return nodes_.back().value;
    }

    // Removes `key` if present; returns whether it was.
    bool erase(std::string_view key, std::uint64_t h) {
        const std::size_t s = find_slot(key, h);
        if (s == kNotFound) return false;
        erase_slot(s);
        return true;
    }

    // Removes the node at dense position `index` (< size()); the last node takes its place.
    void erase_index(std::size_t index) {
        erase_slot(slot_of(index, hash(nodes_[index].key)));
    }

    // Removes every node for which pred(node) is true; returns how many. O(size): compacts
    // the nodes and rebuilds the slots (which also clears the tombstones).
    template <class Pred>
    std::size_t erase_if(Pred&& pred) {
        std::size_t kept = 0;
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            if (pred(static_cast<const Node&>(nodes_[i]))) continue;
            if (kept != i) nodes_[kept] = std::move(nodes_[i]);
            ++kept;
        }
        const std::size_t removed = nodes_.size() - kept;
        if (removed == 0) return 0;
        nodes_.resize(kept);
        rebuild(slots_.size());
        return removed;
    }

    void clear() {
        // Release the memory too: a cleared store should not keep its peak footprint.
        std::vector<Node>().swap(nodes_);
        std::vector<Slot>().swap(slots_);
        tombstones_ = 0;
    }

    std::size_t size() const { return nodes_.size(); }
    bool empty() const { return nodes_.empty(); }
    Node& node(std::size_t index) { return nodes_[index]; }
    const Node& node(std::size_t index) const { return nodes_[index]; }
    // For tests: the index's size and how many of its slots are tombstones.
    std::size_t slot_count() const { return slots_.size(); }
    std::size_t tombstones() const { return tombstones_; }

private:
    // The 128-bit product a * b: returns its low half, stores its high half in `hi`.
    static std::uint64_t mul128(std::uint64_t a, std::uint64_t b, std::uint64_t& hi) {
#if defined(__SIZEOF_INT128__)
        __extension__ using U128 = unsigned __int128;  // __extension__: no -Wpedantic warning
        const U128 m = static_cast<U128>(a) * b;
        hi = static_cast<std::uint64_t>(m >> 64);
        return static_cast<std::uint64_t>(m);
#else
        const std::uint64_t a_lo = a & 0xFFFFFFFFu, a_hi = a >> 32;
        const std::uint64_t b_lo = b & 0xFFFFFFFFu, b_hi = b >> 32;
        const std::uint64_t ll = a_lo * b_lo, lh = a_lo * b_hi, hl = a_hi * b_lo;
        const std::uint64_t mid = (ll >> 32) + (lh & 0xFFFFFFFFu) + (hl & 0xFFFFFFFFu);
        hi = a_hi * b_hi + (lh >> 32) + (hl >> 32) + (mid >> 32);
        return (mid << 32) | (ll & 0xFFFFFFFFu);
#endif
    }
    static std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
        std::uint64_t hi = 0;
        const std::uint64_t lo = mul128(a, b, hi);
        return lo ^ hi;
    }
    static std::uint64_t byte(char c) { return static_cast<unsigned char>(c); }
    static std::uint64_t read4(const char* p) {
        std::uint32_t v;
        std::memcpy(&v, p, sizeof v);
        return v;
    }
    static std::uint64_t read8(const char* p) {
        std::uint64_t v;
        std::memcpy(&v, p, sizeof v);
        return v;
    }

    // stored == key. Keys are mostly short: up to 16 bytes they are compared as two
    // (overlapping) words inline, where operator== calls memcmp out of line.
    static bool same_key(const std::string& stored, std::string_view key) {
        const std::size_t n = key.size();
        if (stored.size() != n) return false;
        const char* a = stored.data();
        const char* b = key.data();
        if (n >= 8 && n <= 16) {
            return ((read8(a) ^ read8(b)) | (read8(a + n - 8) ^ read8(b + n - 8))) == 0;
        }
        if (n >= 4 && n < 8) {
            return ((read4(a) ^ read4(b)) | (read4(a + n - 4) ^ read4(b + n - 4))) == 0;
        }
        return std::memcmp(a, b, n) == 0;
    }

    // tag: 0 empty, 1 tombstone, otherwise the key's fingerprint (always ≥ 2).
    struct Slot {
        std::uint32_t tag;
        std::uint32_t index;
    };
    static constexpr std::uint32_t kEmpty = 0;
    static constexpr std::uint32_t kTombstone = 1;
    static constexpr std::size_t kNotFound = ~std::size_t{0};
    static constexpr std::size_t kMinSlots = 16;
    static constexpr std::size_t kMaxNodes = 0xFFFFFFFEu;  // indices are 32-bit

    static std::uint32_t fingerprint(std::uint64_t h) {
        return static_cast<std::uint32_t>(h >> 32) | 2u;
    }
    // Fibonacci hashing: the product's top bits depend on every bit of h, so keys that share
    // their low bits (all keys of one shard share h % shard_count) still spread evenly.
    std::size_t home(std::uint64_t h) const {
        return static_cast<std::size_t>((h * 0x9E3779B97F4A7C15ull) >> shift_);
    }

    std::size_t find_slot(std::string_view key, std::uint64_t h) const {
        if (slots_.empty()) return kNotFound;
        const std::size_t mask = slots_.size() - 1;
        const std::uint32_t tag = fingerprint(h);
        // Load ≤ 7/8 guarantees an empty slot, so the probe ends.
        for (std::size_t s = home(h);; s = (s + 1) & mask) {
            const Slot& slot = slots_[s];
            if (slot.tag == kEmpty) return kNotFound;
            if (slot.tag == tag && same_key(nodes_[slot.index].key, key)) return s;
        }
    }

    // The slot pointing at nodes_[index] (whose key hashes to h).
    std::size_t slot_of(std::size_t index, std::uint64_t h) const {
        const std::size_t mask = slots_.size() - 1;
        for (std::size_t s = home(h);; s = (s + 1) & mask) {
            if (slots_[s].tag > kTombstone && slots_[s].index == index) return s;
        }
    }

    void erase_slot(std::size_t s) {
        const std::size_t mask = slots_.size() - 1;
        const std::size_t index = slots_[s].index;
        // A slot followed by an empty one ends every probe through it: it can be empty too.
        if (slots_[(s + 1) & mask].tag == kEmpty) {
            slots_[s].tag = kEmpty;
        } else {
            slots_[s].tag = kTombstone;
            ++tombstones_;
        }
        const std::size_t last = nodes_.size() - 1;
        if (index != last) {
            slots_[slot_of(last, hash(nodes_[last].key))].index =
                static_cast<std::uint32_t>(index);
            nodes_[index] = std::move(nodes_[last]);
        }
        nodes_.pop_back();
    }

    // Room for one more insertion: rebuild in place when tombstones are most of the load,
    // else double.
    void grow() {
        std::size_t want = slots_.empty() ? kMinSlots : slots_.size();
        // Live keys above 7/16: double (then ≤ 7/16 + 1). Below: tombstones are more than
        // half the load, and clearing them leaves room for as many insertions as doubling.
        if ((nodes_.size() + 1) * 16 > want * 7) want *= 2;
        while ((nodes_.size() + 1) * 8 > want * 7) want *= 2;
        rebuild(want);
    }

    void rebuild(std::size_t slot_count) {
        if (slot_count == slots_.size()) {
            // Same size (a purge, or clearing tombstones): reuse the array, no allocation.
            std::fill(slots_.begin(), slots_.end(), Slot{kEmpty, 0});
        } else {
            std::vector<Slot>(slot_count, Slot{kEmpty, 0}).swap(slots_);
        }
        shift_ = 64;
        for (std::size_t n = slot_count; n > 1; n >>= 1) --shift_;
        tombstones_ = 0;
        const std::size_t mask = slot_count - 1;
        for (std::size_t i = 0; i < nodes_.size(); ++i) {
            const std::uint64_t h = hash(nodes_[i].key);
            std::size_t s = home(h);
            while (slots_[s].tag != kEmpty) s = (s + 1) & mask;
            slots_[s] = Slot{fingerprint(h), static_cast<std::uint32_t>(i)};
        }
    }

    std::vector<Node> nodes_;
    std::vector<Slot> slots_;
    std::size_t tombstones_ = 0;
    unsigned shift_ = 64;
};

}  // namespace ratelimiter
