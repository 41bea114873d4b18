"""(2) Start-up latency: `scan2conv verify` (the installed console script, embedded default)
against `python -c "import numpy, click"`, medians of interleaved runs."""
import os
import subprocess
import sys
import sysconfig
import time

from common import median

RUNS = 15
TARGET = 1.5


def console_script():
    """The installed `scan2conv` script itself (not a version manager's shim in front of it)."""
    path = os.path.join(sysconfig.get_path("scripts"), "scan2conv")
    if not os.path.exists(path):
        sys.exit(f"benchmark: no console script at {path}; pip install the project first")
    return path


def wall(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   cwd=os.path.expanduser("~"))
    return time.perf_counter() - start


def main():
    script = console_script()
    cmds = {"scan2conv verify": [script, "verify"],
            "python -c 'import numpy, click'": [sys.executable, "-c", "import numpy, click"]}
    print(f"== (2) latency: median of {RUNS} interleaved runs each (one warm-up run first)")
    for cmd in cmds.values():
        wall(cmd)
    times = {name: [] for name in cmds}
    for _ in range(RUNS):
        for name, cmd in cmds.items():
            times[name].append(wall(cmd))
    (ours, base) = (median(times[name]) for name in cmds)
    for name, t in times.items():
        print(f"{name:<34} median {median(t) * 1e3:7.1f} ms   "
              f"(min {min(t) * 1e3:6.1f}, max {max(t) * 1e3:6.1f})")
    ratio = ours / base
    print(f"ratio {ratio:.2f}× (target ≤ {TARGET}×: {'met' if ratio <= TARGET else 'MISSED'})")
    return ratio <= TARGET


if __name__ == "__main__":
    main()
