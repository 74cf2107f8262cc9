"""``python -m ratelimiter.simulate``: the same as ``python -m ratelimiter simulate``."""

from .cli import main

raise SystemExit(main())
