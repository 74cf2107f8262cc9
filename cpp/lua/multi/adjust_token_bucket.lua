-- adjust for the token bucket (C++ twin: algorithm/adjust.hpp). a[5..6]: capacity, rate.
-- Tokens stay in [0, capacity]: a charge empties the bucket at most.
local function adjust(key, a, now, delta)
    local capacity, rate = tonumber(a[5]), tonumber(a[6])
    local s = load_state(key, 2)
    local tokens, last = capacity, now
    if s and plausible_count(s[1]) and finite(s[2]) then
        tokens, last = s[1], s[2]
        if ahead_of_clock(last, now) then last = now end
    end
    local elapsed = max(0, now - last)
    tokens = min(capacity, tokens + elapsed * rate)
    last = max(last, now)
    tokens = max(0, min(capacity, tokens - delta))
    store_state(key, { tokens, last }, last + (capacity - tokens) / rate, now)
end
