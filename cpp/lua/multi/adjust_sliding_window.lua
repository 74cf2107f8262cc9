-- adjust for the sliding window log (C++ twin: algorithm/adjust.hpp). a[6]: window.
-- Rewrites the list (layout: cpp/lua/sliding_window.lua): expired entries dropped, a charge
-- merged into the entry at now (or appended), a refund taken from the newest entries first.
local function adjust(key, a, now, delta)
    local window = tonumber(a[6])
    local raw = call('LRANGE', key, 0, -1)
    if #raw == 1 then error({ err = 'ERR ratelimiter: corrupt state at ' .. key }) end
    local flat = {}
    for i = 1, #raw - 1 do
        if #raw[i] ~= 16 then error({ err = 'ERR ratelimiter: corrupt state at ' .. key }) end
        local t, units = unpack_binary('<d<d', raw[i])
        flat[#flat + 1] = t
        flat[#flat + 1] = units
    end
    local vnow = now
    if #flat > 0 then vnow = max(now, flat[#flat - 1]) end
    local kept, first = {}, 1
    while first <= #flat and flat[first] + window <= vnow do first = first + 2 end
    for i = first, #flat do kept[#kept + 1] = flat[i] end
    if delta >= 0 then
        if #kept > 0 and kept[#kept - 1] == vnow then
            kept[#kept] = kept[#kept] + delta
        elseif delta > 0 then
            kept[#kept + 1] = vnow
            kept[#kept + 1] = delta
        end
    else
        local refund = -delta
        while refund > 0 and #kept > 0 do
            local take = min(kept[#kept], refund)
            kept[#kept] = kept[#kept] - take
            refund = refund - take
            if kept[#kept] <= 0 then
                kept[#kept] = nil
                kept[#kept] = nil
            end
        end
    end
    call('DEL', key)
    if #kept == 0 then return end
    local items, total = {}, 0
    for i = 1, #kept, 2 do
        items[#items + 1] = pack('<d<d', kept[i], kept[i + 1])
        total = total + kept[i + 1]
    end
    items[#items + 1] = pack('<d', total)
    for i = 1, #items, 1000 do  -- unpack() is bounded by Lua's C stack
        call('RPUSH', key, unpack(items, i, math.min(i + 999, #items)))
    end
    call('PEXPIRE', key, ttl_ms(kept[#kept - 1] + window, now))
end
