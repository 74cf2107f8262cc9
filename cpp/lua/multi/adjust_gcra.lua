-- adjust for GCRA (C++ twin: algorithm/adjust.hpp). a[5..7]: burst, interval, tau.
local function adjust(key, a, now, delta)
    local interval = tonumber(a[6])
    local s = load_state(key, 1)
    local tat = s and s[1] or now
    local base = max(tat, now)
    tat = max(now, base + delta * interval)
    store_state(key, { tat }, tat, now)
end
