-- Leaky bucket as a meter (docs/ALGORITHMS.md; C++ twin: algorithm/leaky_bucket.hpp).
-- State {level, last}. ARGV[5..6]: capacity, rate.
local capacity = tonumber(ARGV[5])
local rate = tonumber(ARGV[6])

local s = load_state(KEYS[1], 2)
local level, last = 0, now
-- LeakyBucket::sanitize: corrupt → fresh; a clock glitch re-bases `last` to now; a level
-- above capacity plus one bucket of debt (a lowered capacity) is clamped to it.
local rebased = false
if s and plausible_count(s[1]) and finite(s[2]) then
    level, last = s[1], s[2]
    if ahead_of_clock(last, now) then last, rebased = now, true end
    level = min(level, (1 + DEBT_BUCKETS) * capacity)
end
-- LeakyBucket::rebase: a re-based glitch is written back even if the step rejects.
if rebased and consume then store_rebased(KEYS[1], { level, last }, last + level / rate, now) end

local elapsed = max(0, now - last)
level = max(0, level - elapsed * rate)
last = max(last, now)

local allowed, insufficient, retry_after = false, false, 0
if cost > capacity then
    insufficient, retry_after = true, INF
elseif level + cost <= capacity + EPS then
    allowed = true
    if consume then
        level = level + cost
        store_state(KEYS[1], { level, last }, last + level / rate, now)
    end
else
    retry_after = (level + cost - capacity) / rate
end
return reply(allowed, insufficient, floor_count(capacity - level), level / rate, retry_after,
             { level, rate })
