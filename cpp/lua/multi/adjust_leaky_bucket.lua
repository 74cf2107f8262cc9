-- adjust for the leaky bucket (C++ twin: algorithm/adjust.hpp). a[5..6]: capacity, rate.
-- The level stays in [0, 2·capacity]: a charge takes the bucket into one bucket of debt at
-- most (kDebtBuckets).
local function adjust(key, a, now, delta)
    local capacity, rate = tonumber(a[5]), tonumber(a[6])
    local s = load_state(key, 2)
    local level, last = 0, now
    if s and plausible_count(s[1]) and finite(s[2]) then
        level, last = s[1], s[2]
        if ahead_of_clock(last, now) then last = now end
        level = min(level, (1 + DEBT_BUCKETS) * capacity)
    end
    local elapsed = max(0, now - last)
    level = max(0, level - elapsed * rate)
    last = max(last, now)
    level = min((1 + DEBT_BUCKETS) * capacity, max(0, level + delta))
    store_state(key, { level, last }, last + level / rate, now)
end
