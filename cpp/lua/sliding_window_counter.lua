-- Sliding window counter (docs/ALGORITHMS.md; C++ twin: algorithm/sliding_window_counter.hpp).
-- State {k, curr, prev}. ARGV[5..6]: limit, window.
--! include _window_pair.lua
local limit = tonumber(ARGV[5])
local window = tonumber(ARGV[6])

local s = load_state(KEYS[1], 3)
local pair
if s then
    pair = { k = s[1], curr = s[2], prev = s[3] }
else
    pair = { k = aligned_window_index(now, window), curr = 0, prev = 0 }
end
roll(pair, now, window)
local wp = weight_prev(pair, now, window)
local effective = pair.prev * wp + pair.curr

local allowed, insufficient, retry_after = false, false, 0
if cost > limit then
    insufficient, retry_after = true, INF
elseif effective + cost <= limit + EPS then
    allowed = true
    if consume then
        pair.curr = pair.curr + cost
        effective = effective + cost
        store_state(KEYS[1], { pair.k, pair.curr, pair.prev }, (pair.k + 2) * window, now)
    end
else
    retry_after = wait_for(pair, cost, limit, now, window)
end

local reset_after = 0
if pair.curr > 0 then
    reset_after = (pair.k + 2) * window - now
elseif pair.prev > 0 then
    reset_after = (pair.k + 1) * window - now
end
return reply(allowed, insufficient, floor_count(limit - effective), reset_after, retry_after,
             { pair.curr, pair.prev, effective, wp })
