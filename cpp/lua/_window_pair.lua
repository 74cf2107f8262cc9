-- Included by scripts that declare `--! include _window_pair.lua` (cmake/EmbedLua.cmake).
-- The sliding-window-counter pair {k, curr, prev} (C++ WindowPair, window.hpp).
local function roll(pair, now, window)
    local k_now = aligned_window_index(now, window)
    if k_now == pair.k + 1 then
        pair.prev = pair.curr
        pair.curr = 0
    elseif k_now > pair.k + 1 then
        pair.prev = 0
        pair.curr = 0
    end
    pair.k = max(pair.k, k_now)
end
local function weight_prev(pair, now, window)
    local elapsed = max(0, now - pair.k * window)
    return max(0, 1 - elapsed / window)
end
local function weighted(pair, now, window)
    return pair.prev * weight_prev(pair, now, window) + pair.curr
end
local function wait_for(pair, cost, limit, now, window)
    if weighted(pair, now, window) + cost <= limit + EPS then return 0 end
    local t
    if pair.curr + cost <= limit then
        t = pair.k * window + window * (1 - (limit - cost - pair.curr) / pair.prev)
    else
        t = (pair.k + 1) * window + window * (1 - (limit - cost) / pair.curr)
    end
    return max(0, t - now)
end
-- WindowPair::fresh / sanitize / migrate (window.hpp). `stored` is {k, curr, prev, window}
-- as read (window nil or 0 for a legacy pair), or nil for a new key.
local function pair_from(stored, now, window)
    local p = { k = aligned_window_index(now, window), curr = 0, prev = 0, window = window }
    if not stored then return p end
    local k, curr, prev, w = stored[1], stored[2], stored[3], stored[4] or 0
    if not (plausible_index(k) and plausible_count(curr) and plausible_count(prev) and
            finite(w) and w >= 0) then
        return p  -- corrupt: a fresh key
    end
    if w == 0 then w = window end
    local rebased = ahead_of_clock(k * w, now)
    if rebased then
        k, w = aligned_window_index(now, window), window
    end
    return { k = k, curr = curr, prev = prev, window = w }, rebased
end
local function migrate(pair, now, window)
    if pair.window == window then return end
    local carried = weighted(pair, now, pair.window)
    pair.k, pair.curr, pair.prev, pair.window =
        aligned_window_index(now, window), carried, 0, window
end
