-- Shared prelude, prepended to every algorithm script at build time (cmake/EmbedLua.cmake).
-- In the function library (Redis >= 7 Functions) the part above the per-call marker runs once,
-- when the library is first called, and the part below at the start of every call; in a
-- script (EVALSHA) both run on every call. So nothing above the marker may read KEYS/ARGV.
-- Each script mirrors one C++ step function (cpp/include/ratelimiter/algorithm/*.hpp) and
-- must perform the same floating-point operations in the same order (docs/ALGORITHMS.md).
--
-- Calling convention (all scripts):
--   KEYS[1]  the state key
--   ARGV[1]  now in seconds ('' = use the server clock, redis TIME)
--   ARGV[2]  cost (a positive integer; peek passes 1)
--   ARGV[3]  'consume' or 'peek'
--   ARGV[4]  reply format: 'b' or 't' (below)
--   ARGV[5]... the algorithm's derived parameters, as the C++ Params hold them
-- Reply fields: allowed (0/1), insufficient_capacity (0/1), remaining, reset_after,
-- retry_after, meta... (C++ Decision order). Redis would truncate a Lua number to an
-- integer, so they travel as 'b': one string of little-endian IEEE doubles (exact, and
-- ~10x cheaper than formatting), or 't': a list of strings formatted with %.17g (exact too;
-- for clients that decode every reply as UTF-8).

-- Library functions as locals: a global lookup costs measurably on every call of a script
-- that runs in a few microseconds, and string.format costs ~3 us, so the hot path has none.
local call = redis.call
local floor, ceil = math.floor, math.ceil
local unpack = unpack or table.unpack  -- Lua 5.1 (Redis) | 5.2+ (fakeredis on lupa 5.4)
local rep = string.rep

local EPS = 1e-9
local INF = math.huge

-- pack(fmt, ...) / unpack_binary(fmt, raw): state and 'b' replies are little-endian IEEE
-- doubles ('<d' repeated). Redis, Valkey and KeyDB embed the `struct` library; Lua >= 5.3
-- has string.pack with the same format; fakeredis (Lua 5.1 through lupa) has neither, so
-- the last branch encodes doubles with frexp/ldexp. All three produce the same bytes, so
-- state written on one is read by another unchanged (test_fakeredis.py checks them byte for
-- byte). The fallback knows only '<d' formats: the only ones the scripts use.
local pack, unpack_binary
local struct_lib = rawget(_G, 'struct')
if struct_lib then
    pack, unpack_binary = struct_lib.pack, struct_lib.unpack
elseif string.pack then
    pack, unpack_binary = string.pack, string.unpack
else
    local frexp, ldexp, char, byte = math.frexp, math.ldexp, string.char, string.byte
    local function doubles_in(fmt)
        local n = #fmt / 2
        if fmt ~= rep('<d', n) then
            error({ err = "ERR ratelimiter: no struct library for format '" .. fmt .. "'" })
        end
        return n
    end
    local function encode(x)
        local sign, e, m = 0, 0, 0
        if x < 0 or (x == 0 and 1 / x < 0) then sign, x = 128, -x end
        if x ~= x then
            e, m = 2047, 2 ^ 51  -- quiet NaN
        elseif x == INF then
            e = 2047
        elseif x > 0 then
            local f, ex = frexp(x)  -- x = f * 2^ex, 0.5 <= f < 1
            e = ex + 1022
            if e <= 0 then  -- subnormal: x in units of 2^-1074
                m, e = ldexp(f, e + 52), 0
            else
                m = ldexp(f * 2 - 1, 52)
            end
        end
        local b = {}
        for i = 1, 6 do
            b[i] = m % 256
            m = floor(m / 256)
        end
        b[7] = (e % 16) * 16 + m
        b[8] = sign + floor(e / 16)
        return char(unpack(b))
    end
    local function decode(raw, at)
        local b1, b2, b3, b4, b5, b6, b7, b8 = byte(raw, at, at + 7)
        if not b8 then error({ err = 'ERR ratelimiter: truncated binary state' }) end
        local sign = 1
        if b8 >= 128 then sign = -1 end
        local e = (b8 % 128) * 16 + floor(b7 / 16)
        local m = (((((b7 % 16) * 256 + b6) * 256 + b5) * 256 + b4) * 256 + b3) * 65536
                  + b2 * 256 + b1
        if e == 2047 then
            if m == 0 then return sign * INF end
            return 0 / 0
        end
        if e == 0 then return sign * ldexp(m, -1074) end
        return sign * ldexp(m + 2 ^ 52, e - 1075)
    end
    pack = function(fmt, ...)
        local n, values, out = doubles_in(fmt), { ... }, {}
        for i = 1, n do out[i] = encode(values[i]) end
        return table.concat(out)
    end
    unpack_binary = function(fmt, raw)
        local n, out = doubles_in(fmt), {}
        for i = 1, n do out[i] = decode(raw, 8 * i - 7) end
        out[n + 1] = 8 * n + 1  -- the next position, as struct.unpack returns it
        return unpack(out, 1, n + 1)
    end
end
-- Kept after a key's state is fresh again: harmless (a state past fresh_at decides like a
-- new one) and it absorbs clock skew between clients in client-clock mode.
local TTL_MARGIN_MS = 1000

-- std::max / std::min, argument order included (they differ from math.max on ties of -0).
local function max(a, b)
    if a < b then return b end
    return a
end
local function min(a, b)
    if b < a then return b end
    return a
end

local function aligned_window_index(now, window)
    local k = floor(now / window)
    if k * window > now then
        k = k - 1
    elseif (k + 1) * window <= now then
        k = k + 1
    end
    return k
end

-- Twins of common.hpp: the range check comes first (a NaN, negative or huge value from
-- corrupt state must never reach the client's integer conversion).
local MAX_COUNT = 4503599627370496  -- 2**52
local CLOCK_TOLERANCE = 60          -- kClockTolerance: see docs/ALGORITHMS.md
local function floor_count(value)
    local floored = floor(value + EPS)
    if not (floored > 0) then return 0 end
    if floored >= MAX_COUNT then return MAX_COUNT end
    return floored
end
local function finite(x) return x == x and x ~= INF and x ~= -INF end
local function plausible_count(v) return v >= 0 and v <= MAX_COUNT end
local function plausible_signed_count(v) return v >= -MAX_COUNT and v <= MAX_COUNT end
-- kDebtBuckets (common.hpp): a bucket may owe at most one whole bucket after adjust.
local DEBT_BUCKETS = 1.0
local function plausible_index(k) return finite(k) and k == floor(k) end
local function ahead_of_clock(t, now) return t > now + CLOCK_TOLERANCE end

local function read_now(arg)
    if arg ~= '' then return tonumber(arg) end
    -- TIME is non-deterministic: replicate the script's effects, not the script (a no-op
    -- on Redis >= 7, where effects replication is the only mode).
    if redis.replicate_commands then redis.replicate_commands() end
    local t = call('TIME')
    return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- PX argument for a state that is fresh again at `fresh_at`: an integer-valued number,
-- which redis.call passes as its decimal digits (%.17g).
local function ttl_ms(fresh_at, now)
    local ms = ceil((fresh_at - now) * 1000) + TTL_MARGIN_MS
    if ms < 1 then return 1 end
    if ms > 1e15 then return 1e15 end
    return ms
end

local function fmt(x)
    return string.format('%.17g', x)
end

-- Builds the reply; `meta` is a list of numbers. The binary form packs straight from the
-- arguments (no intermediate table: this runs once per decision). `binary_reply` is ARGV[4]
-- == 'b', set per call below the marker.
local binary_reply = true
local function reply(allowed, insufficient, remaining, reset_after, retry_after, meta)
    local a, i, m = allowed and 1 or 0, insufficient and 1 or 0, #meta
    if binary_reply then
        return pack(rep('<d', 5 + m), a, i, remaining, reset_after, retry_after, unpack(meta, 1, m))
    end
    local out = { fmt(a), fmt(i), fmt(remaining), fmt(reset_after), fmt(retry_after) }
    for j = 1, m do out[5 + j] = fmt(meta[j]) end
    return out
end

-- Reads a fixed-size state of `n` doubles (nil if absent). A state of `legacy_n` doubles
-- (the layout an earlier release wrote) is returned as it is, for the script to convert;
-- any other size is an error, never silently reinterpreted.
local function load_state(key, n, legacy_n)
    local raw = call('GET', key)
    if not raw then return nil end
    if legacy_n and #raw == 8 * legacy_n then n = legacy_n
    elseif #raw ~= 8 * n then error({ err = 'ERR ratelimiter: corrupt state at ' .. key }) end
    local values = { unpack_binary(rep('<d', n), raw) }
    values[n + 1] = nil  -- struct.unpack also returns the next read position
    return values
end

local function store_state(key, values, fresh_at, now)
    call('SET', key, pack(rep('<d', #values), unpack(values)), 'PX', ttl_ms(fresh_at, now))
end

-- The writes of a clock-glitch re-base (C++ Algo::rebase; docs/ALGORITHMS.md "Stored
-- state"): a step makes them whenever it re-based a glitch, before deciding, so they stand
-- even if it rejects (an admission then overwrites them). The multi wrapper does not shadow
-- these two, so there they run at once while the step's own writes wait for every limit.
local rebase_call, store_rebased = call, store_state

--! per call
binary_reply = ARGV[4] == 'b'
local now = read_now(ARGV[1])
local cost = tonumber(ARGV[2])
local consume = ARGV[3] == 'consume'
