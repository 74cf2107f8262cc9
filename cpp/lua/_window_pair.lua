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
