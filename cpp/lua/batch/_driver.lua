-- Batch driver (is_allowed_many on one Redis; cmake/EmbedLua.cmake kBatchScripts), appended
-- after the algorithm's single-key script wrapped unchanged as step(KEYS).
--
--   KEYS      the batch's state keys, in request order (a key may repeat: each occurrence
--             is decided after the previous one, as a loop of single calls would)
--   ARGV      exactly the single-key script's (one cost, op and parameter set for all keys)
-- Reply: one element per key, the single-key script's reply, or an error reply for that key.
--
-- Why one script for many keys: a script call pays a fixed toll before its first line
-- (dispatch, the prelude's closures, TIME) that costs as much as a token bucket's own work;
-- here it is paid once per chunk of keys, and every key is decided at the one clock reading
-- of the prelude (`now`). Each key runs in its own pcall, so a key's error (corrupt state,
-- WRONGTYPE) is that key's reply and neither stops nor undoes the others — as with one
-- script call per key. Cluster nodes never get this script (its keys span slots).
local out = {}
local one = {}
for i = 1, #KEYS do
    one[1] = KEYS[i]
    local ok, r = pcall(step, one)
    if ok then
        out[i] = r
    elseif type(r) == 'table' and r.err then
        out[i] = r
    else
        out[i] = { err = 'ERR ratelimiter: ' .. tostring(r) }
    end
end
return out
