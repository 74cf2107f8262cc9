-- adjust for the token bucket (C++ twin: algorithm/adjust.hpp). a[5..6]: capacity, rate.
local function adjust(key, a, now, delta)
    local capacity, rate = tonumber(a[5]), tonumber(a[6])
    local s = load_state(key, 2)
    local tokens, last
    if s then tokens, last = s[1], s[2] else tokens, last = capacity, now end
    local elapsed = max(0, now - last)
    tokens = min(capacity, tokens + elapsed * rate)
    last = max(last, now)
    tokens = min(capacity, tokens - delta)
    store_state(key, { tokens, last }, last + (capacity - tokens) / rate, now)
end
