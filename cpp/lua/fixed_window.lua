-- Fixed window (docs/ALGORITHMS.md "Fixed window"; C++ twin: algorithm/fixed_window.hpp).
-- State {k, count, window}; a legacy {k, count} was written with the window in effect.
-- ARGV[5..6]: limit, window.
local limit = tonumber(ARGV[5])
local window = tonumber(ARGV[6])

-- FixedWindow::current: the stored state on this window's grid; `carried_until` caps a carried count.
local k_now = aligned_window_index(now, window)
local k, count, carried_until, rebased = k_now, 0, INF, false
local s = load_state(KEYS[1], 3, 2)
if s then
    local sk, scount, sw = s[1], s[2], s[3] or 0
    if plausible_index(sk) and plausible_count(scount) and finite(sw) and sw >= 0 then
        local w = sw
        if w == 0 then w = window end
        if ahead_of_clock(sk * w, now) then
            -- A clock glitch wrote it: keep the count, in the current window.
            count, rebased = scount, true
        elseif w == window then
            -- k_now < k means the clock went backwards: keep counting in the newer window.
            if not (k_now > sk) then k, count = sk, scount end
        else
            local stored_end = (sk + 1) * w
            if now < stored_end and sk * w >= k_now * window then
                count, carried_until = scount, stored_end
            end
        end
    end
end
-- FixedWindow::rebase: a re-based glitch is written back even if the step rejects.
if rebased and consume then store_rebased(KEYS[1], { k, count, window }, (k + 1) * window, now) end
local window_end = min((k + 1) * window, carried_until) - now

local allowed, insufficient, retry_after = false, false, 0
if cost > limit then
    insufficient, retry_after = true, INF
elseif count + cost <= limit then
    allowed = true
    if consume then
        count = count + cost
        store_state(KEYS[1], { k, count, window }, (k + 1) * window, now)
    end
else
    retry_after = window_end
end
return reply(allowed, insufficient, floor_count(limit - count), window_end, retry_after,
             { k * window, count })
