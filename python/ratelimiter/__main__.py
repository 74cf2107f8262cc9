"""``python -m ratelimiter``: ``--version`` (the package version and what its extension holds)
and ``simulate`` (traffic through the algorithms on a simulated clock, as a table and a chart;
``python -m ratelimiter simulate --help``)."""

from __future__ import annotations

import argparse
import sys
from typing import Optional

from . import build_info


def main(argv: Optional[list[str]] = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["simulate"]:
        from .simulate.cli import main as simulate_main

        return simulate_main(args_list[1:])
    parser = argparse.ArgumentParser(
        prog="python -m ratelimiter",
        description="smart-ratelimiter: show what this installation was built with. "
                    "Subcommand: simulate (see 'python -m ratelimiter simulate --help').")
    parser.add_argument("--version", action="store_true",
                        help="print the version, native parts, SQLite version and build flags")
    args = parser.parse_args(args_list)
    if not args.version:
        parser.print_help()
        return 0
    info = build_info()
    hiredis = (f"yes, {info['hiredis_linkage']} {info['hiredis_version']}".rstrip()
               if info["hiredis"] else "no (RedisBackend runs through a redis.Redis client)")
    print(f"smart-ratelimiter {info['version']}")
    print(f"  hiredis: {hiredis}")
    print(f"  SQLite: {info['sqlite_version']} ({info['sqlite_linkage']})")
    print(f"  compiler: {info['compiler']} ({info['build_type']}: {info['cxx_flags']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
