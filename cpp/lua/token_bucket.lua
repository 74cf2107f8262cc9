-- Token bucket (docs/ALGORITHMS.md "Token bucket"; C++ twin: algorithm/token_bucket.hpp).
-- State {tokens, last}. ARGV[5..6]: capacity, rate.
local capacity = tonumber(ARGV[5])
local rate = tonumber(ARGV[6])

local s = load_state(KEYS[1], 2)
local tokens, last
if s then tokens, last = s[1], s[2] else tokens, last = capacity, now end

local elapsed = max(0, now - last)
tokens = min(capacity, tokens + elapsed * rate)
last = max(last, now)

local allowed, insufficient, retry_after = false, false, 0
if cost > capacity then
    insufficient, retry_after = true, INF
elseif tokens + EPS >= cost then
    allowed = true
    if consume then
        tokens = max(0, tokens - cost)
        store_state(KEYS[1], { tokens, last }, last + (capacity - tokens) / rate, now)
    end
else
    retry_after = (cost - tokens) / rate
end
return reply(allowed, insufficient, floor_count(tokens), (capacity - tokens) / rate, retry_after,
             { tokens, rate })
