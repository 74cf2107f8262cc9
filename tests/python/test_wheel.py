"""The portable wheel (scripts/build-wheel.sh) on a host without hiredis or SQLite libraries.

Builds the wheel (incremental after the first time: its build dir is cached), installs it
into a fresh venv, and runs the quick start on memory, SQLite and Redis in a private mount
namespace where every libhiredis*.so* and libsqlite3.so* is covered by /dev/null. The test
first proves they are hidden: loading each of them by name and by path fails there.
Slow (1-3 minutes on the first run); part of the full suite.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="manylinux wheel"),
    pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                       reason="hiding the system libraries needs root and unshare"),
]

LIB_DIRS = ["/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib",
            *glob.glob("/usr/lib/*-linux-gnu"), *glob.glob("/lib/*-linux-gnu")]


def _system_libraries() -> list[str]:
    """Every shared hiredis and SQLite library file on the host (symlinks resolved)."""
    found = {os.path.realpath(p) for d in LIB_DIRS
             for pattern in ("libhiredis*.so*", "libsqlite3.so*")
             for p in glob.glob(f"{d}/{pattern}")}
    return sorted(p for p in found if os.path.isfile(p))


QUICK_START = r"""
import ctypes, os, sys, tempfile
import redis
import ratelimiter
from ratelimiter import MemoryBackend, RedisBackend, SQLiteBackend, TokenBucketRateLimiter

# 1. The libraries really are hidden in this namespace.
for name in ["libhiredis.so.0.14", "libhiredis.so", "libsqlite3.so.0", "libsqlite3.so",
             *sys.argv[2:]]:
    try:
        ctypes.CDLL(name)
    except OSError:
        continue
    raise SystemExit(f"{name} is still loadable")
print(f"hidden: {len(sys.argv) - 2} library files; none loadable")

# 2. The installed package is the wheel, not the source tree.
assert ratelimiter.__file__.startswith(sys.prefix), ratelimiter.__file__
info = ratelimiter.build_info()
print("build_info:", {k: info[k] for k in ("hiredis", "hiredis_linkage", "hiredis_version",
                                          "sqlite_version", "sqlite_linkage")})
assert info["hiredis"] and info["hiredis_linkage"] == "static", info
assert info["sqlite_linkage"] == "static", info

# 3. The quick start on each store.
port = int(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    backends = {
        "memory": MemoryBackend(),
        "sqlite": SQLiteBackend(os.path.join(tmp, "limits.db")),
        "redis": RedisBackend(client=redis.Redis(port=port), key_prefix="wheel:"),
    }
    assert backends["redis"].is_native  # hiredis inside the extension
    for name, backend in backends.items():
        limiter = TokenBucketRateLimiter(backend, limit=3, window=60)
        admitted = [limiter.is_allowed("user:42").allowed for _ in range(4)]
        assert admitted == [True, True, True, False], (name, admitted)
        print(f"{name}: {admitted}")
print("quick start ok")
"""


@pytest.fixture(scope="module")
def wheel() -> Path:
    done = subprocess.run([str(ROOT / "scripts" / "build-wheel.sh")], cwd=ROOT,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    path = ROOT / done.stdout.strip().splitlines()[-1]
    assert path.name.startswith("smart_ratelimiter-") and "-manylinux_2_" in path.name, path
    assert "is consistent with the following platform tag" in " ".join(done.stdout.split())
    return path


def test_wheel_contents(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE")
               for n in names), names
    assert not [n for n in names if ".libs/" in n]  # auditwheel had nothing to vendor
    extension = [n for n in names if n.startswith("ratelimiter/_core") and n.endswith(".so")]
    assert len(extension) == 1
    with zipfile.ZipFile(wheel) as z, z.open(extension[0]) as f:
        data = f.read()
    tmp = wheel.parent / "_core_check.so"
    tmp.write_bytes(data)
    try:
        dynamic = subprocess.run(["readelf", "-d", str(tmp)], check=True, capture_output=True,
                                 text=True).stdout
        exported = subprocess.run(["nm", "-D", "--defined-only", str(tmp)], check=True,
                                  capture_output=True, text=True).stdout.split()
        sections = subprocess.run(["readelf", "-S", str(tmp)], check=True,
                                  capture_output=True, text=True).stdout
    finally:
        tmp.unlink()
    needed = sorted(line.split("[")[1].rstrip("]") for line in dynamic.splitlines()
                    if "(NEEDED)" in line)
    assert not [n for n in needed if "hiredis" in n or "sqlite" in n], needed
    assert set(needed) <= {"libstdc++.so.6", "libm.so.6", "libgcc_s.so.1", "libc.so.6",
                           "ld-linux-x86-64.so.2", "libpthread.so.0", "libdl.so.2"}, needed
    assert [s for s in exported if s.startswith(("PyInit", "sqlite3", "redis"))] == [
        "PyInit__core"]  # nothing of SQLite or hiredis is exported
    assert ".symtab" not in sections  # stripped


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; redis-py comes from the system site-packages
    (the test needs no network), the package itself only from the wheel."""
    path = tmp_path_factory.mktemp("wheel-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(path)],
                   check=True)
    subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index",
                    "--no-deps", "--force-reinstall", "--disable-pip-version-check",
                    str(wheel)], check=True)
    return path


def test_quick_start_without_system_libraries(venv: Path, capsys: Any) -> None:
    hidden = _system_libraries()
    assert any("hiredis" in p for p in hidden) and any("sqlite3" in p for p in hidden), hidden
    mounts = " && ".join(f"mount --bind /dev/null {p}" for p in hidden)
    with RedisServer() as server:
        script = (f"{mounts} && cd / && exec {venv}/bin/python -c \"$QUICK_START\" "
                  f"{server.port} {' '.join(hidden)}")
        done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                               script], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "QUICK_START": QUICK_START})
    with capsys.disabled():
        print("\n" + done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "quick start ok"
