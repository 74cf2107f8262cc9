-- Sliding window counter (docs/ALGORITHMS.md; C++ twin: algorithm/sliding_window_counter.hpp).
-- State {k, curr, prev, window}; a legacy {k, curr, prev} was written with the window in
-- effect. The pair is evaluated on the grid it was written on (pair.window) and moves to
-- this window's grid when next admitted. ARGV[5..6]: limit, window.
--! include _window_pair.lua
local limit = tonumber(ARGV[5])
local window = tonumber(ARGV[6])

local pair, rebased = pair_from(load_state(KEYS[1], 4, 3), now, window)
-- SlidingWindowCounter::rebase: a re-based glitch is written back even if the step rejects.
if rebased and consume then
    store_rebased(KEYS[1], { pair.k, pair.curr, pair.prev, pair.window },
                  (pair.k + 2) * pair.window, now)
end
local w = pair.window
roll(pair, now, w)
local wp = weight_prev(pair, now, w)
local effective = pair.prev * wp + pair.curr

local allowed, insufficient, retry_after = false, false, 0
if cost > limit then
    insufficient, retry_after = true, INF
elseif effective + cost <= limit + EPS then
    allowed = true
    if consume then
        migrate(pair, now, window)
        pair.curr = pair.curr + cost
        effective = effective + cost
        store_state(KEYS[1], { pair.k, pair.curr, pair.prev, window }, (pair.k + 2) * window,
                    now)
    end
else
    retry_after = wait_for(pair, cost, limit, now, w)
end

local reset_after = 0
if pair.curr > 0 then
    reset_after = (pair.k + 2) * pair.window - now
elseif pair.prev > 0 then
    reset_after = (pair.k + 1) * pair.window - now
end
return reply(allowed, insufficient, floor_count(limit - effective), reset_after, retry_after,
             { pair.curr, pair.prev, effective, wp })
