-- adjust for the sliding window counter (C++ twin: algorithm/adjust.hpp). a[6]: window.
--! include _window_pair.lua
local function adjust(key, a, now, delta)
    local window = tonumber(a[6])
    local s = load_state(key, 3)
    local pair
    if s then
        pair = { k = s[1], curr = s[2], prev = s[3] }
    else
        pair = { k = aligned_window_index(now, window), curr = 0, prev = 0 }
    end
    roll(pair, now, window)
    if delta >= 0 then
        pair.curr = pair.curr + delta
    else
        local refund = -delta
        local from_curr = min(pair.curr, refund)
        pair.curr = pair.curr - from_curr
        pair.prev = max(0, pair.prev - (refund - from_curr))
    end
    store_state(key, { pair.k, pair.curr, pair.prev }, (pair.k + 2) * window, now)
end
