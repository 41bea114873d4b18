"""Mutation check: break the library on purpose, one small change at a time, and see the tests notice.

Each mutation in tools/mutations.py names a file, an exact snippet of it, what to put in its
place, and the tests that should then fail. The script copies the project to a temporary
folder (the working tree is never touched, whatever happens), applies one mutation there, runs
its tests against the copy, puts the file back, and goes on to the next:

    KILLED    a test failed (or the run timed out): the suite notices this mistake
    SURVIVED  every test passed: a hole in the suite
    ERROR     the snippet is not in the file, or not once (the list has gone stale), or the
              tests could not be collected; counted as not killed

The last line reads `N/M killed`; the exit status is 0 only when every mutation is killed.

    python tools/mutate.py                 every mutation (many minutes)
    python tools/mutate.py --list          the list, without running anything
    python tools/mutate.py --only npy      the mutations whose file or description contains "npy"
    python tools/mutate.py --jobs 4        four mutations at a time, each in its own copy
    python tools/mutate.py --shard 2/3     every third mutation from the second on (run the
                                           shards side by side on a machine with cores to spare)
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from mutations import MUTATIONS  # noqa: E402

RUNNING = set()   # the pytest processes under way, stopped on any way out


def project_files(root):
    """Paths (relative to root) of the project: what git tracks or would track."""
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root,
                             capture_output=True, check=True).stdout
        return [p for p in out.decode().split("\0") if p and os.path.isfile(os.path.join(root, p))]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "__pycache__", ".hypothesis", ".pytest_cache", "build", "dist"}
        files = []
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]
            files += [os.path.relpath(os.path.join(folder, n), root) for n in names]
        return files


def make_copy(root, dest):
    """Copy the project into dest, laid out as the installed package: scan2conv.cli is cli/."""
    for rel in project_files(root):
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(root, rel), target)
    os.symlink(os.path.join("..", "cli"), os.path.join(dest, "scan2conv", "cli"))


def environment(copy):
    """The tests import the copy, not the installed package, and run without bytecode caches."""
    env = dict(os.environ)
    env["PYTHONPATH"] = copy + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("HYPOTHESIS_PROFILE", "dev")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def check_imports(copy, env):
    """Refuse to run when the copy is not what the tests would import."""
    code = "import scan2conv, scan2conv.cli; print(scan2conv.__file__); print(scan2conv.cli.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=copy, env=env, capture_output=True,
                         text=True)
    paths = out.stdout.split()
    real = os.path.realpath(copy)
    if out.returncode or len(paths) != 2 or not all(os.path.realpath(p).startswith(real) for p in paths):
        sys.exit(f"the tests would not import the copy: {out.stdout.strip()} {out.stderr.strip()}")


def run_tests(copy, env, tests, timeout):
    """(outcome, seconds): "passed", "failed", "timeout" or "error: …"."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "--hypothesis-seed=0", *tests]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=copy, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    RUNNING.add(proc)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "timeout", time.monotonic() - start
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        RUNNING.discard(proc)
    seconds = time.monotonic() - start
    # pytest: 0 passed, 1 a test failed, 2 interrupted (a collection error counts: the mutant
    # broke an import), 3 internal error, 4 usage error, 5 no tests collected
    if proc.returncode == 0:
        return "passed", seconds
    if proc.returncode in (1, 2):
        return "failed", seconds
    tail = " | ".join(out.strip().splitlines()[-3:])
    return f"error: pytest exit {proc.returncode}: {tail}", seconds


def apply(copy, m):
    """Write the mutant into the copy → the original text, or raise ValueError when stale."""
    path = os.path.join(copy, m.path)
    try:
        with open(path, encoding="utf-8") as fp:
            text = fp.read()
    except FileNotFoundError:
        raise ValueError(f"{m.path} does not exist") from None
    count = text.count(m.original)
    if count != 1:
        raise ValueError(f"the snippet occurs {count} times in {m.path}, not once: "
                         f"{m.original.strip()[:60]!r}")
    with open(path, "w", encoding="utf-8") as fp:
        fp.write(text.replace(m.original, m.replacement))
    return text


def judge(copy, env, m, timeout):
    """(verdict, detail, seconds) of one mutation; the file is restored before returning."""
    missing = [t for t in m.tests if not os.path.exists(os.path.join(copy, t.split("::")[0]))]
    if missing:
        return "ERROR", f"no such test file: {', '.join(missing)}", 0.0
    try:
        original = apply(copy, m)
    except ValueError as e:
        return "ERROR", str(e), 0.0
    try:
        outcome, seconds = run_tests(copy, env, m.tests, timeout)
    finally:
        with open(os.path.join(copy, m.path), "w", encoding="utf-8") as fp:
            fp.write(original)
    if outcome == "failed":
        return "KILLED", "", seconds
    if outcome == "timeout":
        return "KILLED", f"(timed out after {timeout:g} s)", seconds
    if outcome == "passed":
        return "SURVIVED", "", seconds
    return "ERROR", outcome, seconds


def baseline(copy, env, mutations, timeout):
    """Every test the mutations use must pass on the unmutated copy, or no verdict means anything."""
    tests = sorted({t for m in mutations for t in m.tests})
    outcome, seconds = run_tests(copy, env, tests, timeout * 4)
    print(f"baseline: {len(tests)} test files on the unmutated code: {outcome} ({seconds:.0f} s)",
          flush=True)
    if outcome != "passed":
        sys.exit("the tests fail without any mutation; fix them first (or pass --no-baseline)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", action="store_true", help="print the mutations and exit")
    ap.add_argument("--only", help="run the mutations whose path or description contains this")
    ap.add_argument("--shard", metavar="K/N", help="only the K-th of N interleaved shares of the list")
    ap.add_argument("--jobs", type=int, default=1,
                    help="mutations judged at once, each in its own copy (default 1)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per mutation (default 300)")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the first run of the tests on the unmutated code")
    args = ap.parse_args(argv)
    # a kill, like Ctrl-C, stops the running tests and removes the copy on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    chosen = [m for m in MUTATIONS if not args.only or args.only in m.path or args.only in m.why]
    if args.shard:
        try:
            k, n = (int(v) for v in args.shard.split("/"))
            if not 1 <= k <= n:
                raise ValueError
        except ValueError:
            ap.error(f"--shard {args.shard!r}: expected K/N with 1 <= K <= N")
        chosen = chosen[k - 1::n]
    if args.list:
        for i, m in enumerate(chosen, 1):
            print(f"{i:3}. {m.path}: {m.why}\n     tests: {' '.join(m.tests)}")
        return 0
    jobs = max(1, min(args.jobs, len(chosen)))
    todo = list(enumerate(chosen, 1))
    lock = threading.Lock()
    verdicts = []
    stopping = threading.Event()   # set on the way out: workers end without a word

    def worker(copy, env):
        while True:
            with lock:
                if not todo:
                    return
                i, m = todo.pop(0)
            try:
                verdict, detail, seconds = judge(copy, env, m, args.timeout)
            except OSError:
                if stopping.is_set():
                    return
                raise
            with lock:
                if stopping.is_set():
                    return
                verdicts.append(verdict)
                print(f"[{i}/{len(chosen)}] {verdict:<8} {m.path}: {m.why} ({seconds:.0f} s)"
                      + (f" {detail}" if detail else ""), flush=True)

    with tempfile.TemporaryDirectory(prefix="scan2conv-mutants-") as top:
        copies = [os.path.join(top, str(j)) for j in range(jobs)]
        for copy in copies:
            make_copy(ROOT, copy)
        envs = [environment(copy) for copy in copies]
        check_imports(copies[0], envs[0])
        if not args.no_baseline:
            baseline(copies[0], envs[0], chosen, args.timeout)
        threads = [threading.Thread(target=worker, args=ce, daemon=True) for ce in zip(copies, envs)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.5)
        finally:
            stopping.set()
            with lock:
                todo.clear()
            for proc in list(RUNNING):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    killed = verdicts.count("KILLED")
    print(f"{killed}/{len(chosen)} killed")
    return 0 if killed == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
