-- Multi-limit driver (MultiRateLimiter; C++ twin: store/multi.hpp apply_multi), appended to
-- every multi script after the algorithm's single-limit script wrapped as limit_step(), its
-- adjust() and _wrap.lua (cmake/EmbedLuaMulti.cmake).
--
--   KEYS[i]   limit i's state key (all of a key's limits share one {hash tag})
--   ARGV[1]   now ('' = server TIME), ARGV[2] unused ('0'), ARGV[4] reply format
--   ARGV[3]   'consume': step every limit with consume, its writes queued (_wrap.lua); run
--             the writes only if all admitted (all or nothing). A limit of cost 0
--             is not consulted (reported as a peek, counted as admitting).
--             'peek': every limit peeks.  'adjust': charge/refund every limit of non-zero
--             cost (a signed count), then report each as a peek.
--   then per limit: its cost, then its parameters (the single-limit script's ARGV[5..]).
-- Reply: admitted (0/1), then per limit the fields of a single-limit reply.
local n = #KEYS
local per = (#ARGV - 4) / n
local op = ARGV[3]

local args, costs, results = {}, {}, {}
for i = 1, n do
    local base = 4 + (i - 1) * per
    local a = { ARGV[1], ARGV[base + 1], op, ARGV[4] }
    for j = 2, per do a[3 + j] = ARGV[base + j] end
    args[i], costs[i] = a, tonumber(ARGV[base + 1])
end

local admitted = true
if op == 'consume' then
    -- Every consulted limit steps with consume, its writes queued; all are committed only if
    -- every limit admitted. Otherwise the limits that admitted are asked again without
    -- consuming, to report their state as it is.
    deferred = {}
    for i = 1, n do
        if costs[i] == 0 then
            local r = limit_step({ KEYS[i] }, args[i], now, 1, false)
            r[1], r[2], r[5] = true, false, 0
            results[i] = r
        else
            results[i] = limit_step({ KEYS[i] }, args[i], now, costs[i], true)
            if not results[i][1] then admitted = false end
        end
    end
    local writes = deferred
    deferred = nil
    if admitted then
        commit(writes)
    else
        for i = 1, n do
            if costs[i] ~= 0 and results[i][1] then
                results[i] = limit_step({ KEYS[i] }, args[i], now, costs[i], false)
            end
        end
    end
elseif op == 'adjust' then
    for i = 1, n do
        if costs[i] ~= 0 then adjust(KEYS[i], args[i], now, costs[i]) end
        results[i] = limit_step({ KEYS[i] }, args[i], now, 1, false)
    end
else
    for i = 1, n do results[i] = limit_step({ KEYS[i] }, args[i], now, 1, false) end
end

local out = { admitted and 1 or 0 }
for i = 1, n do
    local r = results[i]
    out[#out + 1] = r[1] and 1 or 0
    out[#out + 1] = r[2] and 1 or 0
    out[#out + 1] = r[3]
    out[#out + 1] = r[4]
    out[#out + 1] = r[5]
    for j = 1, #r[6] do out[#out + 1] = r[6][j] end
end
if ARGV[4] == 'b' then return pack(rep('<d', #out), unpack(out)) end
for i = 1, #out do out[i] = fmt(out[i]) end
return out
