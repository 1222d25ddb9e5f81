"""Run at start by every Python process of the tests' Ray head, whose PYTHONPATH
names this folder (and no other process: nothing else is given this folder).

It lets a test make the next Ray Client server die at birth, as Ray's own race
sometimes makes it die (ray-project/ray#63202): the test creates the file that
MEDIAFIND_TEST_KILL_CLIENT_SERVER names, and the next server started for a
ray:// connection removes it and exits before serving.
"""

import contextlib
import os

_flag = os.environ.get("MEDIAFIND_TEST_KILL_CLIENT_SERVER")
if _flag and os.path.exists(_flag):
    with open("/proc/self/cmdline", "rb") as _cmdline:
        _starting = b"--mode=specific-server" in _cmdline.read()
    if _starting:
        with contextlib.suppress(FileNotFoundError):
            os.remove(_flag)
            os._exit(1)
