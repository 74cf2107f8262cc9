-- adjust for the adaptive limiter (C++ twin: algorithm/adjust.hpp). a[5..14] as adaptive.lua:
-- the guard and the load sensor carry a charge whole; the bucket is at most emptied, and a
-- refund fills it to max_burst at most.
--! include _window_pair.lua
local function refund_pair(pair, refund)
    local from_curr = min(pair.curr, refund)
    pair.curr = pair.curr - from_curr
    pair.prev = max(0, pair.prev - (refund - from_curr))
end
local function adjust(key, a, now, delta)
    local window, adaptive_window = tonumber(a[6]), tonumber(a[8])
    local rate, max_burst = tonumber(a[12]), tonumber(a[13])
    local s = load_state(key, 10, 8)
    local guard, tokens, last, sensor
    if s then  -- Adaptive::sanitize
        guard = pair_from({ s[1], s[2], s[3], s[9] }, now, window)
        sensor = pair_from({ s[6], s[7], s[8], s[10] }, now, adaptive_window)
        tokens, last = s[4], s[5]
        if not (plausible_count(tokens) and finite(last)) then
            tokens, last = max_burst, now
        elseif ahead_of_clock(last, now) then
            last = now
        end
    else
        guard = pair_from(nil, now, window)
        tokens, last = max_burst, now
        sensor = pair_from(nil, now, adaptive_window)
    end
    roll(guard, now, guard.window)
    migrate(guard, now, window)
    roll(sensor, now, sensor.window)
    migrate(sensor, now, adaptive_window)
    local elapsed = max(0, now - last)
    tokens = min(max_burst, tokens + elapsed * rate)
    last = max(last, now)
    if delta >= 0 then
        guard.curr = guard.curr + delta
        sensor.curr = sensor.curr + delta
        tokens = max(0, tokens - delta)
    else
        refund_pair(guard, -delta)
        refund_pair(sensor, -delta)
        tokens = min(max_burst, tokens - delta)
    end
    local fresh_at = max(max((guard.k + 2) * window, (sensor.k + 2) * adaptive_window),
                         last + (max_burst - tokens) / rate)
    store_state(key, { guard.k, guard.curr, guard.prev, tokens, last,
                       sensor.k, sensor.curr, sensor.prev, window, adaptive_window },
                fresh_at, now)
end
