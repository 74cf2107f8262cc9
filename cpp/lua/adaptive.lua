-- Adaptive hybrid (docs/ALGORITHMS.md "Adaptive hybrid"; C++ twin: algorithm/adaptive.hpp).
-- State {gk, gcurr, gprev, tokens, last, lk, lcurr, lprev, gwindow, lwindow}; a legacy
-- 8-value state was written with the windows in effect.
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

-- Adaptive::sanitize.
local s = load_state(KEYS[1], 10, 8)
local guard, tokens, last, sensor
local rebased, guard_rebased, sensor_rebased = false, false, false
if s then
    guard, guard_rebased = pair_from({ s[1], s[2], s[3], s[9] }, now, window)
    sensor, sensor_rebased = pair_from({ s[6], s[7], s[8], s[10] }, now, adaptive_window)
    tokens, last = s[4], s[5]
    if not (plausible_count(tokens) and finite(last)) then
        tokens, last = max_burst, now
    elseif ahead_of_clock(last, now) then
        last, rebased = now, true
    end
    rebased = rebased or guard_rebased or sensor_rebased
else
    guard = pair_from(nil, now, window)
    tokens, last = max_burst, now
    sensor = pair_from(nil, now, adaptive_window)
end
local gw, lw = guard.window, sensor.window  -- grids the pairs were written on
-- Adaptive::rebase: a glitch re-based in any layer is written back even if the step rejects.
if rebased and consume then
    store_rebased(KEYS[1], { guard.k, guard.curr, guard.prev, tokens, last,
                             sensor.k, sensor.curr, sensor.prev, gw, lw },
                  max(max((guard.k + 2) * gw, (sensor.k + 2) * lw),
                      last + (max_burst - tokens) / rate), now)
end

-- 1-2. Load and the burst it allows.
roll(sensor, now, lw)
local load
if external_load ~= '' then
    load = tonumber(external_load)
else
    local admitted = weighted(sensor, now, lw)
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
roll(guard, now, gw)
local sw_count = weighted(guard, now, gw)

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
    local sensor_empty = (sensor.k + 2) * lw - now
    retry_after = max(max(sensor_empty, wait_for(guard, cost, max_burst, now, gw)),
                      bucket_wait)
elseif sw_count + cost > effective_burst + EPS then
    retry_after = max(wait_for(guard, cost, effective_burst, now, gw), bucket_wait)
elseif tokens + EPS < cost then
    layer = LAYER_TOKEN_BUCKET
    retry_after = bucket_wait
else
    -- 5. Admitted.
    allowed = true
    layer = LAYER_TOKEN_BUCKET
    if consume then
        migrate(guard, now, window)
        migrate(sensor, now, adaptive_window)
        guard.curr = guard.curr + cost
        sw_count = sw_count + cost
        tokens = max(0, tokens - cost)
        sensor.curr = sensor.curr + cost
        local fresh_at = max(max((guard.k + 2) * window, (sensor.k + 2) * adaptive_window),
                             last + (max_burst - tokens) / rate)
        store_state(KEYS[1], { guard.k, guard.curr, guard.prev, tokens, last,
                               sensor.k, sensor.curr, sensor.prev, window, adaptive_window },
                    fresh_at, now)
    end
end

-- 6.
local guard_reset = now  -- the guard's counts are gone at this instant
if guard.curr > 0 then
    guard_reset = (guard.k + 2) * guard.window
elseif guard.prev > 0 then
    guard_reset = (guard.k + 1) * guard.window
end
local reset_after = max(0, max(guard_reset, last + (effective_burst - tokens) / rate) - now)
return reply(allowed, insufficient, floor_count(min(tokens, effective_burst - sw_count)),
             reset_after, retry_after,
             { layer, tokens, effective_burst, rate, sw_count, load })
