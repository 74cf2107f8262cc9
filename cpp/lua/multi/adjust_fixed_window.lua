-- adjust for the fixed window (C++ twin: algorithm/adjust.hpp). a[6]: window.
local function adjust(key, a, now, delta)
    local window = tonumber(a[6])
    local s = load_state(key, 2)
    local k, count
    if s then k, count = s[1], s[2] else k, count = aligned_window_index(now, window), 0 end
    local k_now = aligned_window_index(now, window)
    if k_now > k then k, count = k_now, 0 end
    if delta >= 0 then count = count + delta else count = max(0, count + delta) end
    store_state(key, { k, count }, (k + 1) * window, now)
end
