"""(2) Start-up latency: `scan2conv verify` (the installed console script, embedded default)
against `python -c "import numpy, click"`, medians of interleaved runs."""
import os
import shutil
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


def project_caches():
    """The bytecode-cache folders of the project's own modules (the library and the commands)."""
    import scan2conv
    import scan2conv.cli
    folders = {os.path.dirname(scan2conv.__file__), os.path.dirname(scan2conv.cli.__file__)}
    return [os.path.join(root, d) for folder in folders for root, dirs, _ in os.walk(folder)
            for d in dirs if d == "__pycache__"]


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
    # the pass above wrote the project's caches: remove them, and forbid writing new ones
    for folder in project_caches():
        shutil.rmtree(folder, ignore_errors=True)
    print("without the project's bytecode caches (an editable install run with "
          "PYTHONDONTWRITEBYTECODE: its modules compiled on every run):")
    no_cache = measure(cmds, {**env, "PYTHONDONTWRITEBYTECODE": "1"})
    left = project_caches()
    print(f"  ratio {no_cache:.2f}×" + (f"  (caches appeared in {len(left)} folders: "
                                        "this figure is not without caches)" if left else ""))
    return ratio <= TARGET


if __name__ == "__main__":
    main()
