-- Fixed window (docs/ALGORITHMS.md "Fixed window"; C++ twin: algorithm/fixed_window.hpp).
-- State {k, count}. ARGV[5..6]: limit, window.
local limit = tonumber(ARGV[5])
local window = tonumber(ARGV[6])

local s = load_state(KEYS[1], 2)
local k, count
if s then k, count = s[1], s[2] else k, count = aligned_window_index(now, window), 0 end

local k_now = aligned_window_index(now, window)
-- k_now < k means the clock went backwards: keep counting in the newer window.
if k_now > k then k, count = k_now, 0 end
local window_end = (k + 1) * window - now

local allowed, insufficient, retry_after = false, false, 0
if cost > limit then
    insufficient, retry_after = true, INF
elseif count + cost <= limit then
    allowed = true
    if consume then
        count = count + cost
        store_state(KEYS[1], { k, count }, (k + 1) * window, now)
    end
else
    retry_after = window_end
end
return reply(allowed, insufficient, floor_count(limit - count), window_end, retry_after,
             { k * window, count })
