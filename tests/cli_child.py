"""Run the command line in a child process, optionally under an address-space limit.

A signal (SIGSEGV, SIGBUS) in the child is a failed test rather than a dead test run, and the
limit proves that reading stays within it.
"""
import os
import resource
import subprocess
import sys

_MAIN = "import sys; from scan2conv.cli import main; sys.argv[0] = 'scan2conv'; main()"


def run_cli(args, cwd, max_memory=None, timeout=120):
    """(returncode, stdout, stderr) of `scan2conv args` run in cwd, memory capped at max_memory."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-c", _MAIN, *map(str, args)], cwd=cwd, capture_output=True,
                       text=True, timeout=timeout, env=env, preexec_fn=limit if max_memory else None)
    return p.returncode, p.stdout, p.stderr


def assert_clean_refusal(result, name, code=3):
    """Exit `code`, exactly one stderr line naming the file, no traceback."""
    rc, out, err = result
    assert rc == code, (rc, err[-2000:])
    assert err.count("\n") == 1 and err.startswith("error: "), err[-2000:]
    assert "Traceback" not in err + out and name in err, err
