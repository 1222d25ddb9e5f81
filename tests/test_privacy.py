"""Nothing leaves the machine: not the models' runtimes' telemetry, not anything."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import COLORS, draw_photo

# ONNX Runtime's telemetry first resolves its host about ten seconds after the
# runtime loads; an index run that keeps the runtime loaded this long would
# have made that request.
SECONDS_WITH_THE_RUNTIME_LOADED = 14

# Indexes, then keeps the process (and ONNX Runtime) alive, as a long run would.
RUN = f"""
import sys, time
from mediafind.cli import app
try:
    app(["index", sys.argv[1], "--no-audio"], prog_name="mediafind")
except SystemExit as done:
    assert not done.code, done.code
import onnxruntime  # loaded by the run: the CPU fast path
time.sleep({SECONDS_WITH_THE_RUNTIME_LOADED})
"""


def test_an_index_run_makes_no_network_request(tmp_path: Path):
    for number, name in enumerate(COLORS):
        draw_photo(tmp_path / "photos" / f"{number}-{name}.jpg", COLORS[name])
    log = tmp_path / "syscalls.txt"
    env = dict(os.environ)
    # The test process has imported mediafind, which sets these: the run must
    # set them itself.
    for name in ("ORT_DISABLE_TELEMETRY", "HF_HUB_DISABLE_TELEMETRY"):
        env.pop(name, None)
    result = subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-o",
            str(log),
            "-e",
            "trace=socket,connect,sendto,sendmsg",
            # The network is denied: any attempt fails at once, as offline.
            "-e",
            "inject=connect:error=ENETUNREACH",
            sys.executable,
            "-c",
            RUN,
            str(tmp_path / "photos"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    calls = log.read_text()  # strace ran and logged (nothing, when all is well)
    # A socket merely created is not a request (libuuid opens one to read the
    # machine's hardware address); reaching out means connecting or sending.
    attempts = [
        line
        for line in calls.splitlines()
        if re.search(r"\b(connect|sendto|sendmsg)\(.*AF_INET6?\b", line)
    ]
    assert attempts == [], "\n".join(attempts)
