-- adjust for the sliding window counter (C++ twin: algorithm/adjust.hpp). a[6]: window.
--! include _window_pair.lua
local function adjust(key, a, now, delta)
    local window = tonumber(a[6])
    local pair = pair_from(load_state(key, 4, 3), now, window)
    roll(pair, now, pair.window)
    migrate(pair, now, window)
    if delta >= 0 then
        pair.curr = pair.curr + delta
    else
        local refund = -delta
        local from_curr = min(pair.curr, refund)
        pair.curr = pair.curr - from_curr
        pair.prev = max(0, pair.prev - (refund - from_curr))
    end
    store_state(key, { pair.k, pair.curr, pair.prev, window }, (pair.k + 2) * window, now)
end
