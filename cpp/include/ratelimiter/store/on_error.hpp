// A shared store's failure policy (on_error), the same for Redis and SQLite: when the store
// cannot decide (unreachable, timed out, locked, I/O error, corrupt), "raise" raises
// BackendError; "allow" (fail open) and "deny" (fail closed) answer a Decision with
// `fallback` set, which the result shows as metadata["on_error"], and count it.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string_view>

#include "ratelimiter/result.hpp"

namespace ratelimiter {

enum class OnError { raise, allow, deny };

inline std::optional<OnError> on_error_from_name(std::string_view name) {
    if (name == "raise") return OnError::raise;
    if (name == "allow") return OnError::allow;
    if (name == "deny") return OnError::deny;
    return std::nullopt;
}

// What "allow" or "deny" answers: "allow" admits with nothing known about the quota; "deny"
// rejects with a short retry (the outage's length is unknown, and inf would mean "never").
inline Decision fallback_decision(OnError policy) {
    Decision d;
    d.fallback = true;
    if (policy == OnError::allow) {
        d.allowed = true;
    } else {
        d.retry_after = 1.0;
        d.reset_after = 1.0;
    }
    return d;
}

// Counts of decisions made by the on_error policy instead of by the store.
struct FallbackCounters {
    std::uint64_t errors = 0;            // failed attempts to get a decision (any policy)
    std::uint64_t fallback_allowed = 0;  // decisions answered "allowed" by on_error="allow"
    std::uint64_t fallback_denied = 0;   // decisions answered "denied" by on_error="deny"
};

// The policy of one store and its counters; thread-safe.
class FallbackPolicy {
public:
    explicit FallbackPolicy(OnError policy = OnError::raise) : policy_(policy) {}

    OnError on_error() const { return policy_; }

    // Call from the catch block of a failed decision: counts the failure, rethrows it under
    // "raise", else returns (and counts) the policy's answer.
    Decision answer() {
        errors_.fetch_add(1, std::memory_order_relaxed);
        if (policy_ == OnError::raise) throw;
        (policy_ == OnError::allow ? allowed_ : denied_).fetch_add(1, std::memory_order_relaxed);
        return fallback_decision(policy_);
    }

    FallbackCounters counters() const {
        FallbackCounters c;
        c.errors = errors_.load(std::memory_order_relaxed);
        c.fallback_allowed = allowed_.load(std::memory_order_relaxed);
        c.fallback_denied = denied_.load(std::memory_order_relaxed);
        return c;
    }

private:
    OnError policy_;
    std::atomic<std::uint64_t> errors_{0};
    std::atomic<std::uint64_t> allowed_{0};
    std::atomic<std::uint64_t> denied_{0};
};

}  // namespace ratelimiter
