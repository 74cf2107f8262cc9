-- GCRA (docs/ALGORITHMS.md "GCRA"; C++ twin: algorithm/gcra.hpp).
-- State {tat}. ARGV[5..7]: burst, interval T, tau.
local burst = tonumber(ARGV[5])
local interval = tonumber(ARGV[6])
local tau = tonumber(ARGV[7])

local s = load_state(KEYS[1], 1)
local tat = s and s[1] or now

local base = max(tat, now)
local new_tat = base + cost * interval
local tat_after = base

local allowed, insufficient, retry_after = false, false, 0
if cost > burst then
    insufficient, retry_after = true, INF
elseif new_tat - now <= tau + EPS then
    allowed = true
    if consume then
        tat_after = new_tat
        store_state(KEYS[1], { tat_after }, tat_after, now)
    end
else
    retry_after = new_tat - now - tau
end
return reply(allowed, insufficient, floor_count((tau - (tat_after - now)) / interval),
             max(0, tat_after - now), retry_after, { tat_after })
