-- What limit_step() (an algorithm's single-limit script, wrapped unchanged by
-- cmake/EmbedLuaMulti.cmake) sees instead of _common.lua's `call`, `store_state` and
-- `reply`: its reply comes back as values, and while `deferred` is a table its writes are
-- queued there (reads still run), so the driver can commit every limit's writes or none.
-- `rebase_call` / `store_rebased` (a clock-glitch re-base) are not shadowed: they run at
-- once, so a re-based state stands even when the decision rejects (C++ apply_multi).
local raw_call, raw_store_state = call, store_state
local WRITES = { SET = true, DEL = true, LTRIM = true, LSET = true, RPUSH = true, PEXPIRE = true }
local deferred = nil
local function deferring_call(command, ...)
    if deferred and WRITES[command] then
        deferred[#deferred + 1] = { command, ... }
        return nil
    end
    return raw_call(command, ...)
end
local function deferring_store_state(key, values, fresh_at, at)
    if deferred then
        deferred[#deferred + 1] = { false, key, values, fresh_at, at }
    else
        raw_store_state(key, values, fresh_at, at)
    end
end
local function values_reply(allowed, insufficient, remaining, reset_after, retry_after, meta)
    return { allowed, insufficient, remaining, reset_after, retry_after, meta }
end
-- Runs the queued writes, in order.
local function commit(writes)
    for i = 1, #writes do
        local w = writes[i]
        if w[1] then raw_call(unpack(w)) else raw_store_state(w[2], w[3], w[4], w[5]) end
    end
end
