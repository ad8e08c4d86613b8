"""cProfile in the processes a benchmark starts, for finding where their CPU goes.

Put this folder first on PYTHONPATH and set VOMAGE_CPROFILE_DIR; every Python process
whose command line contains one of VOMAGE_CPROFILE_MATCH (comma-separated, default
"vomage ingest") profiles its main thread's CPU time (time.thread_time: waits and sleeps
do not count) from the start and writes `<dir>/<name>-<pid>.prof` when sent SIGRTMIN+3
(`benchmarks/capacity.py --profile-dir` sends it at the end of the run). Threads other
than the main one are not profiled.
"""

import os
import sys

_dir = os.environ.get("VOMAGE_CPROFILE_DIR")
_cmd = " ".join(sys.argv) if hasattr(sys, "argv") else ""
_match = [m.strip() for m in os.environ.get("VOMAGE_CPROFILE_MATCH", "vomage ingest").split(",") if m.strip()]
if _dir and _cmd and any(m in _cmd for m in _match):
    import cProfile
    import signal
    import time

    _profile = cProfile.Profile(time.thread_time)
    _name = next(m for m in _match if m in _cmd).replace(" ", "-").replace("/", "_")

    def _dump(*_args):
        _profile.disable()
        _profile.dump_stats(os.path.join(_dir, f"{_name}-{os.getpid()}.prof"))
        _profile.enable()

    signal.signal(signal.SIGRTMIN + 3, _dump)
    _profile.enable()
