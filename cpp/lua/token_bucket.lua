-- Token bucket (docs/ALGORITHMS.md "Token bucket"; C++ twin: algorithm/token_bucket.hpp).
-- State {tokens, last}. ARGV[5..6]: capacity, rate.
local capacity = tonumber(ARGV[5])
local rate = tonumber(ARGV[6])

local s = load_state(KEYS[1], 2)
local tokens, last = capacity, now
-- TokenBucket::sanitize: corrupt → fresh; a clock glitch re-bases `last` to now; debt
-- below one whole bucket (a lowered capacity) is clamped to it.
local rebased = false
if s and plausible_signed_count(s[1]) and finite(s[2]) then
    tokens, last = s[1], s[2]
    if ahead_of_clock(last, now) then last, rebased = now, true end
    tokens = max(tokens, -DEBT_BUCKETS * capacity)
end
-- TokenBucket::rebase: a re-based glitch is written back even if the step rejects.
if rebased and consume then
    store_rebased(KEYS[1], { tokens, last }, last + (capacity - tokens) / rate, now)
end

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
