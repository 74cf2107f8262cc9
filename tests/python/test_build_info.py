"""build_info(), `python -m ratelimiter --version`, and a build without hiredis: CMake's
configure succeeds with a clear message, and RedisBackend then runs through a redis.Redis
client (exercised here on this build by switching its native path off)."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import ALL_LIMITERS, FakeClock, make_exact
from redis_server import RedisServer

import ratelimiter
from ratelimiter import ConfigurationError, MemoryBackend, RedisBackend
from ratelimiter.backends import redis_backend

ROOT = Path(__file__).resolve().parents[2]


def test_build_info_describes_this_build() -> None:
    info = ratelimiter.build_info()
    assert set(info) == {"version", "hiredis", "hiredis_linkage", "hiredis_version",
                         "sqlite_version", "sqlite_linkage", "compiler", "build_type",
                         "cxx_flags"}
    assert info["version"] == ratelimiter.__version__
    assert isinstance(info["hiredis"], bool)
    assert info["hiredis_linkage"] in (("static", "dynamic") if info["hiredis"] else ("none",))
    assert info["sqlite_linkage"] in ("static", "dynamic")
    assert re.fullmatch(r"3\.\d+\.\d+", str(info["sqlite_version"]))
    assert re.match(r"(GNU|Clang|AppleClang) \d+", str(info["compiler"]))
    assert info["build_type"] == "Release"
    assert "-O2" in str(info["cxx_flags"]) and "-O3" not in str(info["cxx_flags"])


def test_version_command_prints_build_info() -> None:
    out = subprocess.run([sys.executable, "-m", "ratelimiter", "--version"], check=True,
                         capture_output=True, text=True, cwd="/").stdout
    info = ratelimiter.build_info()
    lines = out.splitlines()
    assert lines[0] == f"smart-ratelimiter {ratelimiter.__version__}"
    hiredis = (f"yes, {info['hiredis_linkage']} {info['hiredis_version']}".rstrip()
               if info["hiredis"] else "no (RedisBackend runs through a redis.Redis client)")
    assert lines[1] == f"  hiredis: {hiredis}"
    assert lines[2] == f"  SQLite: {info['sqlite_version']} ({info['sqlite_linkage']})"
    assert lines[3].startswith(f"  compiler: {info['compiler']} (Release: ")


@pytest.fixture(scope="module")
def server() -> Any:
    with RedisServer() as s:
        yield s


@pytest.fixture
def without_hiredis(monkeypatch: pytest.MonkeyPatch) -> None:
    """RedisBackend as a build without hiredis constructs it."""
    monkeypatch.setattr(redis_backend, "_NATIVE_REDIS", False)


@pytest.mark.parametrize("cls", ALL_LIMITERS)
def test_no_hiredis_runs_through_the_client(cls: type, server: Any,
                                            without_hiredis: None) -> None:
    clock = FakeClock()
    backends = [RedisBackend(redis.Redis(port=server.port), key_prefix=f"nh:{cls.__name__}:",
                             use_server_time=False),
                RedisBackend(url=f"redis://127.0.0.1:{server.port}/3",
                             key_prefix=f"nh:{cls.__name__}:", use_server_time=False)]
    assert [b.is_native for b in backends] == [False, False]
    limiters = [make_exact(cls, b, 3, 10.0, clock=clock) for b in backends]
    reference = make_exact(cls, MemoryBackend(), 3, 10.0, clock=clock)
    for step in range(12):
        clock.advance(1.3 if step % 4 == 3 else 0.0)
        expected = reference.is_allowed("k")
        assert [lim.is_allowed("k") for lim in limiters] == [expected, expected]
    # The url's db number reached the client redis-py built.
    assert redis.Redis(port=server.port, db=3).keys(f"nh:{cls.__name__}:*")


def test_no_hiredis_without_redis_py_says_what_to_install(
        without_hiredis: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> Any:
        raise ImportError("No module named 'redis'")

    monkeypatch.setattr(redis_backend, "_redis_module", missing)
    with pytest.raises(ConfigurationError, match=r"without hiredis.*smart-ratelimiter\[redis\]"):
        RedisBackend()


def _pybind11_dir() -> str:
    import pybind11

    return str(pybind11.get_cmake_dir())


def _hiredis_dev_files() -> list[str]:
    """The hiredis development files CMake could find: pkg-config file, header dir, libs."""
    pcdir = subprocess.run(["pkg-config", "--variable=pcfiledir", "hiredis"],
                           capture_output=True, text=True).stdout.strip()
    paths = [f"{pcdir}/hiredis.pc"] if pcdir else []
    paths += [d for d in ("/usr/include/hiredis", "/usr/local/include/hiredis")
              if os.path.exists(f"{d}/hiredis.h")]
    for libdir in ["/usr/lib", "/usr/lib64", "/usr/local/lib", *glob.glob("/usr/lib/*-linux-*")]:
        paths += glob.glob(f"{libdir}/libhiredis.so") + glob.glob(f"{libdir}/libhiredis.a")
    return [p for p in paths if os.path.exists(p)]


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")
@pytest.mark.parametrize("how", ["option", "hidden"])
def test_cmake_configures_without_hiredis(tmp_path: Path, how: str) -> None:
    """-DRATELIMITER_WITH_HIREDIS=OFF, or (AUTO) a machine whose hiredis development files
    are hidden by bind mounts in a private mount namespace: the configure succeeds, says
    so, and leaves the hiredis transport out of the build."""
    cmake = ["cmake", "-S", str(ROOT), "-B", str(tmp_path / "b"), "-G", "Ninja",
             f"-Dpybind11_DIR={_pybind11_dir()}", f"-DPython_EXECUTABLE={sys.executable}"]
    if how == "option":
        command = cmake + ["-DRATELIMITER_WITH_HIREDIS=OFF"]
    else:
        if shutil.which("unshare") is None or os.geteuid() != 0:
            pytest.skip("hiding files needs root and unshare")
        hidden = _hiredis_dev_files()
        assert hidden, "hiredis development files expected on the test machine"
        (tmp_path / "empty").mkdir()
        mounts = [f"mount --bind {tmp_path / 'empty' if os.path.isdir(p) else '/dev/null'} {p}"
                  for p in hidden]
        # Prove they are hidden before configuring.
        checks = ["! pkg-config --exists hiredis"] + [
            f"test ! -e {p}/hiredis.h" if os.path.isdir(p) else f"test ! -s {p}" for p in hidden]
        script = " && ".join(mounts + checks + [" ".join(cmake)])
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    if how == "hidden":
        assert "hiredis not found: building without the native Redis path" in done.stderr
    assert "hiredis: FALSE" in done.stdout
    ninja = (tmp_path / "b" / "build.ninja").read_text()
    # What is compiled: build.ninja's sources and those the unity build's TUs include.
    built = ninja + "".join(p.read_text() for p in (tmp_path / "b").rglob("unity_*_cxx.cxx"))
    assert "hiredis_transport.cpp" not in built and "libhiredis" not in ninja
    assert "sqlite_store.cpp" in built


@pytest.mark.slow
def test_extension_links_and_runs_without_lto(tmp_path: Path) -> None:
    """The binding's hot part includes only pybind11/pytypes.h, and LTO could hide a pybind11
    template it uses but nothing defines (Clang and -DCMAKE_INTERPROCEDURAL_OPTIMIZATION=OFF
    builds link without it): built that way, the extension links, imports and decides."""
    build = tmp_path / "b"
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), "-G", "Ninja",
                    "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_INTERPROCEDURAL_OPTIMIZATION=OFF",
                    f"-Dpybind11_DIR={_pybind11_dir()}", f"-DPython_EXECUTABLE={sys.executable}"],
                   check=True, capture_output=True, timeout=180)
    done = subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "-flto" not in (build / "build.ninja").read_text()
    package = tmp_path / "pkg" / "ratelimiter"
    shutil.copytree(ROOT / "python" / "ratelimiter", package)
    for built in build.glob("_core*.so"):
        shutil.copy(built, package)
    probe = ("import ratelimiter\n"
             "from ratelimiter import MemoryBackend, TokenBucketRateLimiter\n"
             f"assert ratelimiter.__file__.startswith({str(package)!r}), ratelimiter.__file__\n"
             "limiter = TokenBucketRateLimiter(MemoryBackend(), limit=2, window=60)\n"
             "print([limiter.is_allowed('k').allowed for _ in range(3)])\n"
             "try:\n"
             "    limiter.is_allowed('')\n"
             "except ratelimiter.ConfigurationError as e:\n"
             "    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path / "pkg")},
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "[True, True, False]", "ConfigurationError key must be a non-empty str"]
