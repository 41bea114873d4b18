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


def wall(cmd, env):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   cwd=os.path.expanduser("~"), env=env)
    return time.perf_counter() - start


def measure(cmds, env):
    """{name: median seconds}, runs interleaved, after one warm-up run of each."""
    for cmd in cmds.values():
        wall(cmd, env)
    times = {name: [] for name in cmds}
    for _ in range(RUNS):
        for name, cmd in cmds.items():
            times[name].append(wall(cmd, env))
    for name, t in times.items():
        print(f"  {name:<34} median {median(t) * 1e3:7.1f} ms   "
              f"(min {min(t) * 1e3:6.1f}, max {max(t) * 1e3:6.1f})")
    ours, base = (median(times[name]) for name in cmds)
    return ours / base


def main():
    script = console_script()
    cmds = {"scan2conv verify": [script, "verify"],
            "python -c 'import numpy, click'": [sys.executable, "-c", "import numpy, click"]}
    print(f"== (2) latency: median of {RUNS} interleaved runs each (one warm-up run first)")
    # pip compiles a package's modules when it installs them; an editable install leaves that
    # to the first run, which PYTHONDONTWRITEBYTECODE forbids
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    print("with bytecode caches, as after pip install:")
    ratio = measure(cmds, env)
    print(f"  ratio {ratio:.2f}× (target ≤ {TARGET}×: {'met' if ratio <= TARGET else 'MISSED'})")
    if "PYTHONDONTWRITEBYTECODE" in os.environ:
        print("as this environment runs it (PYTHONDONTWRITEBYTECODE set: the project's modules "
              "compiled on every run):")
        print(f"  ratio {measure(cmds, dict(os.environ)):.2f}×")
    return ratio <= TARGET


if __name__ == "__main__":
    main()
