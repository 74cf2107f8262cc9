-- adjust for the leaky bucket (C++ twin: algorithm/adjust.hpp). a[5..6]: capacity, rate.
local function adjust(key, a, now, delta)
    local rate = tonumber(a[6])
    local s = load_state(key, 2)
    local level, last
    if s then level, last = s[1], s[2] else level, last = 0, now end
    local elapsed = max(0, now - last)
    level = max(0, level - elapsed * rate)
    last = max(last, now)
    level = max(0, level + delta)
    store_state(key, { level, last }, last + level / rate, now)
end
