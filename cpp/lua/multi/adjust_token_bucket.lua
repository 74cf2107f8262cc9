-- adjust for the token bucket (C++ twin: algorithm/adjust.hpp). a[5..6]: capacity, rate.
-- Tokens stay in [-capacity, capacity]: a charge takes the bucket into one bucket of debt
-- at most (kDebtBuckets).
local function adjust(key, a, now, delta)
    local capacity, rate = tonumber(a[5]), tonumber(a[6])
    local s = load_state(key, 2)
    local tokens, last = capacity, now
    if s and plausible_signed_count(s[1]) and finite(s[2]) then
        tokens, last = s[1], s[2]
        if ahead_of_clock(last, now) then last = now end
        tokens = max(tokens, -DEBT_BUCKETS * capacity)
    end
    local elapsed = max(0, now - last)
    tokens = min(capacity, tokens + elapsed * rate)
    last = max(last, now)
    tokens = max(-DEBT_BUCKETS * capacity, min(capacity, tokens - delta))
    store_state(key, { tokens, last }, last + (capacity - tokens) / rate, now)
end
