-- adjust for GCRA (C++ twin: algorithm/adjust.hpp). a[5..6]: burst, interval.
-- The level (units in flight) stays in [0, 2·burst]: a charge takes it into one burst of
-- debt at most (kDebtBuckets).
local function adjust(key, a, now, delta)
    local burst, interval = tonumber(a[5]), tonumber(a[6])
    local s = load_state(key, 2, 1)
    local level, last = 0, now
    if s and #s == 2 and plausible_count(s[1]) and finite(s[2]) then
        level, last = s[1], s[2]
        if ahead_of_clock(last, now) then last = now end
        level = min(level, (1 + DEBT_BUCKETS) * burst)
    end
    local elapsed = max(0, now - last)
    level = max(0, level - elapsed / interval)
    last = max(last, now)
    level = min((1 + DEBT_BUCKETS) * burst, max(0, level + delta))
    store_state(key, { level, last }, last + level * interval, now)
end
