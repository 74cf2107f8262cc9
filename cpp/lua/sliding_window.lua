-- Sliding window log (docs/ALGORITHMS.md "Sliding window log"; C++ twin:
-- algorithm/sliding_window.hpp). ARGV[5..6]: limit, window.
--
-- State: one Redis list, oldest entry first, each entry struct-packed {t, n}; the last
-- element is the packed total of n (kept so a step costs O(expired entries), as in C++).
-- Entries with equal t are merged and the total never exceeds limit, so the list holds at
-- most limit + 1 elements.
local limit = tonumber(ARGV[5])
local window = tonumber(ARGV[6])
local key = KEYS[1]

local CHUNK = 32
local size = call('LLEN', key)  -- entries + 1 (the total), or 0
if size == 1 then error({ err = 'ERR ratelimiter: corrupt state at ' .. key }) end
local entries = size > 0 and size - 1 or 0

-- Entry i (0-based), fetched a span at a time: reading forwards the spans grow 4x per fetch
-- up to CHUNK (a step usually needs only the oldest entry: one LRANGE of 32 entries cost more
-- than the rest of the step); reading backwards, the CHUNK ending at i. A peek of a glitched
-- log reads its re-based newest entry from `override` instead.
local cache, cache_from, span = {}, -1, 1
local override_i, override_t, override_n = -1, 0, 0
local function entry(i)
    if i == override_i then return override_t, override_n end
    if cache_from < 0 or i < cache_from or i >= cache_from + #cache then
        local from, count = i, span
        if cache_from >= 0 and i < cache_from then
            from, count = max(0, i - CHUNK + 1), CHUNK
        else
            span = min(CHUNK, span * 4)
        end
        cache, cache_from = call('LRANGE', key, from, from + count - 1), from
    end
    local raw = cache[i - cache_from + 1]
    if not raw or #raw ~= 16 then error({ err = 'ERR ratelimiter: corrupt state at ' .. key }) end
    local t, n = unpack_binary('<d<d', raw)
    return t, n
end

local total, newest_t, newest_n = 0, nil, 0
if entries > 0 then
    local tail = call('LRANGE', key, -2, -1)  -- the newest entry and the total, in one call
    local raw_total = tail[2]
    if not raw_total or #raw_total ~= 8 then
        error({ err = 'ERR ratelimiter: corrupt state at ' .. key })
    end
    total = unpack_binary('<d', raw_total)
    cache, cache_from = { tail[1] }, entries - 1
    newest_t, newest_n = entry(entries - 1)
end

-- A clock glitch (SlidingWindow::rebase): the entries beyond now + CLOCK_TOLERANCE are the
-- newest; they still count but merge into one entry at max(now, the newest entry within the
-- tolerance). A step writes that back even if it rejects (a full key would stay locked until
-- real time catches up otherwise); a peek only reads the log as re-based.
if newest_t and ahead_of_clock(newest_t, now) then
    local units, kept = 0, entries
    while kept > 0 do
        local t, n = entry(kept - 1)
        if not ahead_of_clock(t, now) then break end
        units = units + n
        kept = kept - 1
    end
    local at, n, merged = now, units, false
    if kept > 0 then
        local prev_t, prev_n = entry(kept - 1)
        if prev_t >= now then at, n, merged = prev_t, prev_n + units, true end
    end
    if merged then entries = kept else entries = kept + 1 end
    if consume then
        if kept == 0 then rebase_call('DEL', key) else rebase_call('LTRIM', key, 0, kept - 1) end
        if merged then
            rebase_call('LSET', key, kept - 1, pack('<d<d', at, n))
        else
            rebase_call('RPUSH', key, pack('<d<d', at, n))
        end
        rebase_call('RPUSH', key, pack('<d', total))
        rebase_call('PEXPIRE', key, ttl_ms(at + window, now))
        cache, cache_from = {}, -1
    else
        override_i, override_t, override_n = entries - 1, at, n
    end
    newest_t, newest_n = at, n
end

-- The log as seen at now (View in C++): the clock never goes back past the newest entry.
local vnow = now
if newest_t then vnow = max(now, newest_t) end
local expired, count = 0, total
while expired < entries do
    local t, n = entry(expired)
    -- `t + window <= now`, the same sum retry_after uses (see the C++ comment).
    if not (t + window <= vnow) then break end
    count = count - n
    expired = expired + 1
end

local allowed, insufficient, retry_after = false, false, 0
local remaining = floor_count(limit - count)
local reset_after = 0
if count > 0 then reset_after = newest_t + window - now end
local current = count

if cost > limit then
    insufficient, retry_after = true, INF
elseif count + cost <= limit then
    allowed = true
    if consume then
        if expired > 0 then call('LTRIM', key, expired, -1) end
        local new_total = count + cost
        local packed_total = pack('<d', new_total)
        if expired < entries and newest_t == vnow then
            call('LSET', key, -2, pack('<d<d', vnow, newest_n + cost))
            call('LSET', key, -1, packed_total)
        elseif entries > 0 then
            call('LSET', key, -1, pack('<d<d', vnow, cost))
            call('RPUSH', key, packed_total)
        else
            call('RPUSH', key, pack('<d<d', vnow, cost), packed_total)
        end
        call('PEXPIRE', key, ttl_ms(vnow + window, now))
        current = new_total
        remaining = floor_count(limit - new_total)
        reset_after = vnow + window - now
    end
else
    -- Oldest entries leave first; wait until enough units have left.
    local to_leave = count + cost - limit
    local left = 0
    for i = expired, entries - 1 do
        local t, n = entry(i)
        left = left + n
        if left >= to_leave then
            retry_after = t + window - now
            break
        end
    end
end
return reply(allowed, insufficient, remaining, reset_after, retry_after, { current })
