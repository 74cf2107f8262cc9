-- Multi-limit driver (MultiRateLimiter; C++ twin: store/multi.hpp apply_multi), appended to
-- every multi script after the algorithm's single-limit script wrapped as limit_step() and
-- its adjust() (cmake/EmbedLuaMulti.cmake).
--
--   KEYS[i]   limit i's state key (all of a key's limits share one {hash tag})
--   ARGV[1]   now ('' = server TIME), ARGV[2] unused ('0'), ARGV[4] reply format
--   ARGV[3]   'consume': decide every limit on the current state without storing; only if
--             all admit, step each again with consume (all or nothing; the last one decides
--             with consume at once, storing only if it admits). A limit of cost 0
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
    -- The last consulted limit decides with consume directly (it stores only if it admits),
    -- so a single limit costs one step, as the single-limit script does.
    local last = 0
    for i = 1, n do
        if costs[i] ~= 0 then last = i end
    end
    for i = 1, n do
        if costs[i] == 0 then
            local r = limit_step({ KEYS[i] }, args[i], now, 1, false)
            r[1], r[2], r[5] = true, false, 0
            results[i] = r
        elseif i ~= last then
            results[i] = limit_step({ KEYS[i] }, args[i], now, costs[i], false)
            if not results[i][1] then admitted = false end
        end
    end
    if last > 0 then
        results[last] = limit_step({ KEYS[last] }, args[last], now, costs[last], admitted)
        if not results[last][1] then admitted = false end
    end
    if admitted then
        for i = 1, n do
            if costs[i] ~= 0 and i ~= last then
                results[i] = limit_step({ KEYS[i] }, args[i], now, costs[i], true)
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
