-- adjust for the fixed window (C++ twin: algorithm/adjust.hpp). a[6]: window.
-- The stored state is read as fixed_window.lua reads it (FixedWindow::current).
local function adjust(key, a, now, delta)
    local window = tonumber(a[6])
    local k_now = aligned_window_index(now, window)
    local k, count = k_now, 0
    local s = load_state(key, 3, 2)
    if s then
        local sk, scount, sw = s[1], s[2], s[3] or 0
        if plausible_index(sk) and plausible_count(scount) and finite(sw) and sw >= 0 then
            local w = sw
            if w == 0 then w = window end
            if ahead_of_clock(sk * w, now) then
                count = scount
            elseif w == window then
                if not (k_now > sk) then k, count = sk, scount end
            elseif now < (sk + 1) * w and sk * w >= k_now * window then
                count = scount
            end
        end
    end
    if delta >= 0 then count = count + delta else count = max(0, count + delta) end
    store_state(key, { k, count, window }, (k + 1) * window, now)
end
