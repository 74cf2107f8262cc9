-- Adaptive hybrid (docs/ALGORITHMS.md "Adaptive hybrid"; C++ twin: algorithm/adaptive.hpp).
-- State {gk, gcurr, gprev, tokens, last, lk, lcurr, lprev}.
-- ARGV[5..14]: limit, window, burst_multiplier, adaptive_window, high, low, penalty, rate,
-- max_burst, external load ('' = measure this key's own load).
--! include _window_pair.lua
local limit = tonumber(ARGV[5])
local window = tonumber(ARGV[6])
local burst_multiplier = tonumber(ARGV[7])
local adaptive_window = tonumber(ARGV[8])
local high = tonumber(ARGV[9])
local low = tonumber(ARGV[10])
local penalty = tonumber(ARGV[11])
local rate = tonumber(ARGV[12])
local max_burst = tonumber(ARGV[13])
local external_load = ARGV[14]

local LAYER_SLIDING_WINDOW, LAYER_TOKEN_BUCKET = 0, 1

local s = load_state(KEYS[1], 8)
local guard, tokens, last, sensor
if s then
    guard = { k = s[1], curr = s[2], prev = s[3] }
    tokens, last = s[4], s[5]
    sensor = { k = s[6], curr = s[7], prev = s[8] }
else
    guard = { k = aligned_window_index(now, window), curr = 0, prev = 0 }
    tokens, last = max_burst, now
    sensor = { k = aligned_window_index(now, adaptive_window), curr = 0, prev = 0 }
end

-- 1-2. Load and the burst it allows.
roll(sensor, now, adaptive_window)
local load
if external_load ~= '' then
    load = tonumber(external_load)
else
    local admitted = weighted(sensor, now, adaptive_window)
    load = (admitted / adaptive_window) / rate
end
local factor
if load <= low then
    factor = 1
elseif load >= high then
    factor = 1 - penalty
else
    factor = 1 - penalty * (load - low) / (high - low)
end
local effective_burst = max(1, floor(limit * burst_multiplier * factor + EPS))

-- 3. Guard.
roll(guard, now, window)
local sw_count = weighted(guard, now, window)

-- 4. Bucket.
local elapsed = max(0, now - last)
tokens = min(effective_burst, tokens + elapsed * rate)
last = max(last, now)
local bucket_wait = max(0, (cost - tokens) / rate)

local allowed, insufficient, retry_after = false, false, 0
local layer = LAYER_SLIDING_WINDOW
if cost > max_burst then
    insufficient, retry_after = true, INF
elseif cost > effective_burst then
    -- Only a lower load can admit it: wait for the sensor to empty (burst = max_burst).
    local sensor_empty = (sensor.k + 2) * adaptive_window - now
    retry_after = max(max(sensor_empty, wait_for(guard, cost, max_burst, now, window)),
                      bucket_wait)
elseif sw_count + cost > effective_burst + EPS then
    retry_after = max(wait_for(guard, cost, effective_burst, now, window), bucket_wait)
elseif tokens + EPS < cost then
    layer = LAYER_TOKEN_BUCKET
    retry_after = bucket_wait
else
    -- 5. Admitted.
    allowed = true
    layer = LAYER_TOKEN_BUCKET
    if consume then
        guard.curr = guard.curr + cost
        sw_count = sw_count + cost
        tokens = max(0, tokens - cost)
        sensor.curr = sensor.curr + cost
        local fresh_at = max(max((guard.k + 2) * window, (sensor.k + 2) * adaptive_window),
                             last + (max_burst - tokens) / rate)
        store_state(KEYS[1], { guard.k, guard.curr, guard.prev, tokens, last,
                               sensor.k, sensor.curr, sensor.prev }, fresh_at, now)
    end
end

-- 6.
local guard_reset = now  -- the guard's counts are gone at this instant
if guard.curr > 0 then
    guard_reset = (guard.k + 2) * window
elseif guard.prev > 0 then
    guard_reset = (guard.k + 1) * window
end
local reset_after = max(0, max(guard_reset, last + (effective_burst - tokens) / rate) - now)
return reply(allowed, insufficient, floor_count(min(tokens, effective_burst - sw_count)),
             reset_after, retry_after,
             { layer, tokens, effective_burst, rate, sw_count, load })
