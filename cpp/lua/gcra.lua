-- GCRA (docs/ALGORITHMS.md "GCRA"; C++ twin: algorithm/gcra.hpp).
-- State {level, last}: units in flight at `last` (tat = last + level·T); a legacy {tat}
-- reads as a fresh key. ARGV[5..7]: burst, interval T, tau.
local burst = tonumber(ARGV[5])
local interval = tonumber(ARGV[6])

local s = load_state(KEYS[1], 2, 1)
local level, last, rebased = 0, now, false
if s and #s == 2 and plausible_count(s[1]) and finite(s[2]) then
    level, last = s[1], s[2]
    -- Gcra::sanitize: a clock glitch re-bases to now; a lowered burst clamps the carry to
    -- burst plus one burst of debt.
    if ahead_of_clock(last, now) then last, rebased = now, true end
    level = min(level, (1 + DEBT_BUCKETS) * burst)
end
-- Gcra::rebase: a re-based glitch is written back even if the step rejects.
if rebased and consume then
    store_rebased(KEYS[1], { level, last }, last + level * interval, now)
end

local elapsed = max(0, now - last)
level = max(0, level - elapsed / interval)
last = max(last, now)

local allowed, insufficient, retry_after = false, false, 0
if cost > burst then
    insufficient, retry_after = true, INF
elseif level + cost <= burst + EPS then
    allowed = true
    if consume then
        level = level + cost
        store_state(KEYS[1], { level, last }, last + level * interval, now)
    end
else
    retry_after = (level + cost - burst) * interval
end
return reply(allowed, insufficient, floor_count(burst - level), level * interval, retry_after,
             { last + level * interval })
