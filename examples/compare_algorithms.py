"""Compare the seven algorithms on scripted traffic with a simulated clock, and chart it.

Each traffic pattern (steady 1.5x the rate, bursts, the fixed-window boundary attack, a
ramp) is sent through every algorithm (limit 10 per 1-second window, memory store). The
table shows what each admitted, the most requests it admitted in any 1-second span (where
"10 per second" can be exceeded), and how long rejected callers were told to wait. No
sleeping: the clock is simulated, so the run takes a fraction of a second.

This is ``python -m ratelimiter simulate``; every option of it works here:

    python examples/compare_algorithms.py [--limit 10] [--window 1.0] [--out chart.svg]
"""

from __future__ import annotations

import sys

from ratelimiter.simulate.cli import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
