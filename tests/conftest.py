from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False, help="run slow real-data fits")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: use --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def configs_dir() -> Path:
    return HERE / "configs"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_answers(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real, throw-away ``redis-server`` (no persistence) for this test session.

    Skipped when ``redis-server`` is not installed, unless ``PROMOLIFT_REQUIRE_REDIS=1`` (set by
    ``.ci/run``), which turns a missing server into a failure.
    """
    import os
    import shutil
    import subprocess
    import time

    binary = shutil.which("redis-server")
    if binary is None:
        message = ("redis-server is not installed (apt-get install -y redis-server); "
                   "CI sets PROMOLIFT_REQUIRE_REDIS=1 so that this fails there")
        if os.environ.get("PROMOLIFT_REQUIRE_REDIS", "") not in ("", "0"):
            pytest.fail(message)
        pytest.skip(message)
    workdir = tmp_path_factory.mktemp("redis")
    for _attempt in range(3):  # the free port may be taken between probing and binding
        port = _free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(workdir), "--logfile", str(workdir / f"redis-{port}.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None and not _redis_answers(port):
            time.sleep(0.02)
        if proc.poll() is None and _redis_answers(port):
            break
        proc.kill()
        proc.wait()
    else:
        pytest.fail(f"redis-server did not start; see the logs in {workdir}")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
