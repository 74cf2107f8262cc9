-- Batch prelude (cmake/EmbedLua.cmake kBatchScripts), between the helpers and step(): every
-- key's step parses the same ARGV (its parameters: ten numbers for adaptive), so `tonumber`
-- is memoized for the call (measured: -18% per adaptive key, a few % for the others).
-- tonumber is pure, so a cached value is exactly the value it would return.
local raw_tonumber = tonumber
local number_cache = {}
local function tonumber(s)
    local v = number_cache[s]
    if v == nil then
        v = raw_tonumber(s)
        number_cache[s] = v
    end
    return v
end
