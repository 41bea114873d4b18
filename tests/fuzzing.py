"""Seeded byte mutations of good files of every format scan2conv reads, run through the commands
that read them, in worker processes that a crash, a hang or a memory blow-up cannot take down
with the caller.

Shared by tests/test_fuzz.py (a few hundred mutations) and tools/fuzz.py (thousands):

    seeds = build_seeds(folder)                  # good files, each with the commands that read it
    cases = make_cases(seeds, count, seed, folder)
    results = run_cases(cases)                   # [{"exit", "stdout", "stderr", …} or a crash]
    failures = [(c, r, p) for c, r in zip(cases, results) if (p := problems(c, r))]

A case is reproducible from (seed, index) alone: file i is mutated by random.Random(f"{seed}/{i}").
"""
import contextlib
import gc
import io
import json
import os
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mutations import INTERESTING, _npy_join, _npy_parts, mutate, zip_bytes

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"

# what a run may end with: agree, disagree, bad input
EXIT_OK = {0, 1, 3}
MAX_LINE = 1000          # characters in one stderr line
CASE_TIMEOUT = 30.0      # seconds for one command (the machine may be busy)
MEMORY = 2**31           # bytes of address space a worker may add to its warmed-up size
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

os.environ.setdefault("KERAS_BACKEND", "torch")   # before anything imports keras

C, K, S = 4, 4, 2        # the seed MLP: 16 → 6 → 2, scanned over 20 frames × 4 features


@dataclass
class Seed:
    """A good file, the kind of mutation that reaches inside it, and what reads it."""
    name: str            # file name: its suffix selects the reader
    kind: str            # npy, pickle-npy, zip, hdf5, safetensors, onnx, text
    role: str            # mlp, stack or input
    path: str = ""
    data: bytes = b""
    context: dict = field(default_factory=dict)   # mlp, stack, input, stride, channels

    @property
    def suffix(self):
        return self.name[self.name.index("."):]

    def commands(self, path, out):
        """Every command line that reads the file at path; outputs go into the folder out."""
        c, f = self.context, str(path)
        s, ch = str(c["stride"]), str(c["channels"])
        k = ["--kernel", c["kernel"]] if "kernel" in c else []   # an image's patch
        if self.role == "mlp":
            return [["verify", f, "--stride", s, "--input", c["input"], *k],
                    ["inspect", f, "--channels", ch, "--json"],
                    ["explain", f, "--stride", s, "--channels", ch, *k],
                    ["convert", f, "--stride", s, "--channels", ch, "-o", f"{out}/stack.npz",
                     "--json", *k]]
        if self.role == "stack":
            return [["verify", c["mlp"], "--stack", f, "--input", c["input"], "--stride", s, *k],
                    ["scan", f, c["input"], "-o", f"{out}/y.npy", "--aggregate", "max", "--json"],
                    ["inspect", f]]
        return [["verify", c["mlp"], "--input", f, "--stride", s, "--json", *k],
                ["scan", c["stack"], f, "-o", f"{out}/y.npy"]]


# ---- the good files

def _mlp_arrays():
    """w1 (16, 6), b1 (6,), w2 (6, 2), b2 (2,) in (in, out) orientation."""
    rng = np.random.default_rng(20)
    return [np.round(rng.standard_normal(shape), 3)
            for shape in [(K * C, 6), (6,), (6, 2), (2,)]]


def _write_numpy_family(folder):
    w1, b1, w2, b2 = _mlp_arrays()
    np.savez(folder / "mlp.npz", W1=w1, b1=b1, W2=w2, b2=b2)
    np.save(folder / "single.npy", w1)
    import h5py
    with h5py.File(folder / "plain.h5", "w") as f:
        for name, a in zip(["W1", "b1", "W2", "b2"], [w1, b1, w2, b2]):
            f[name] = a
    shutil.copy(FIXTURES / "mlp_weights_part_c.npy", folder / "homework.npy")
    shutil.copy(FIXTURES / "data.asc", folder / "homework_input.asc")
    x = np.random.default_rng(21).integers(-3, 4, (20, C))
    (folder / "x.asc").write_text("".join(" ".join(map(str, row)) + "\n" for row in x))
    np.save(folder / "x.npy", x.astype(np.float64))
    np.savez(folder / "x.npz", x=x.astype(np.float32))
    return ["mlp.npz", "single.npy", "plain.h5", "homework.npy"]


def _write_torch(folder):
    import torch
    w1, b1, w2, b2 = _mlp_arrays()
    state = {"0.weight": w1.T, "0.bias": b1, "2.weight": w2.T, "2.bias": b2}
    torch.save({k: torch.from_numpy(v.copy()) for k, v in state.items()}, folder / "mlp.pt")
    return ["mlp.pt"]


def _write_safetensors(folder):
    from safetensors.numpy import save_file
    w1, b1, w2, b2 = _mlp_arrays()
    save_file({"0.weight": w1.T.copy(), "0.bias": b1, "2.weight": w2.T.copy(), "2.bias": b2},
              str(folder / "mlp.safetensors"))
    return ["mlp.safetensors"]


def _write_keras(folder):
    import logging
    logging.getLogger("absl").setLevel(logging.ERROR)   # no advice about the legacy format
    import keras
    w1, b1, w2, b2 = _mlp_arrays()
    model = keras.Sequential([keras.Input((K * C,)),
                              keras.layers.Dense(6, activation="relu", name="hidden"),
                              keras.layers.Dense(2, name="out")], name="mlp")
    model.set_weights([w1, b1, w2, b2])
    model.save_weights(folder / "keras3.weights.h5")
    model.save(folder / "legacy.h5")
    model.save(folder / "model.keras")
    _zip_deterministic(folder / "model.keras")
    return ["keras3.weights.h5", "legacy.h5", "model.keras"]


def _zip_deterministic(path):
    """Rewrite a Keras archive without what changes from one save to the next (dates, save
    time, object ids), so the same model gives the same bytes."""
    with zipfile.ZipFile(path) as zf:
        members = [(i, zf.read(i)) for i in zf.infolist()]
    members = [(i, re.sub(rb'("date_saved": )"[^"]*"', rb'\1""',
                          re.sub(rb'("shared_object_id": )\d+', rb"\g<1>1", data)))
               for i, data in members]
    Path(path).write_bytes(zip_bytes(members))


# stack file name → extra convert options
STACKS = {"stack.npz": [], "stack.h5": [], "stack.safetensors": [], "stack.weights.h5": [],
          "stack.onnx": [], "stack_w.npz": ["--format", "mytorch-w"],
          "stack_stride1.npz": ["--format", "mytorch-stride1"]}
OPTIONAL = {"torch": _write_torch, "safetensors": _write_safetensors, "keras": _write_keras}
KINDS = {".npz": "zip", ".keras": "zip", ".pt": "zip", ".h5": "hdf5", ".safetensors": "safetensors",
         ".onnx": "onnx", ".asc": "text", ".npy": "npy"}


def _kind(name, data):
    kind = KINDS[os.path.splitext(name)[1]]
    if kind == "npy" and b"'|O'" in data[:200]:
        return "pickle-npy"
    return kind


def _convert_stacks(folder):
    from click.testing import CliRunner
    from scan2conv.cli import main
    written = []
    for name, extra in STACKS.items():
        if name == "stack.onnx" and not _importable("onnx"):
            continue
        r = CliRunner().invoke(main, ["convert", str(folder / "mlp.npz"), "--stride", str(S),
                                      "--channels", str(C), "-o", str(folder / name), *extra])
        assert r.exit_code == 0, (name, r.output, r.stderr)
        written.append(name)
    return written


# image stacks: file name → extra convert options (the writers that need a library are left
# out when it is missing)
IMAGE_STACKS = {"img_stack.npz": [], "img_stack.h5": [], "img_stack.safetensors": [],
                "img_stack_w.npz": ["--format", "mytorch-w"]}
IMAGE_STACKS_NEEDING = {"img_stack.pt": "torch", "img_stack.weights.h5": "keras",
                        "img_stack.onnx": "onnx"}


def _image_files(folder):
    """An image MLP (8×8×3 patches, shared 2×2 blocks), an image, its stacks in every format and
    the MLP unrolled from one (its axes in its metadata) → (mlp names, stack names, input names)."""
    from click.testing import CliRunner
    from scan2conv import defaults
    from scan2conv.cli import main
    m = defaults.default_image_mlp()
    np.savez(folder / "img_mlp.npz", **{f"W{i}": layer.w for i, layer in enumerate(m.layers)})
    np.save(folder / "img_x.npy", np.random.default_rng(22).integers(-3, 4, (12, 16, 3)).astype(float))
    stacks = dict(IMAGE_STACKS, **{n: [] for n, lib in IMAGE_STACKS_NEEDING.items() if _importable(lib)})
    for name, extra in stacks.items():
        r = CliRunner().invoke(main, ["convert", str(folder / "img_mlp.npz"), "--kernel", "8x8",
                                      "-o", str(folder / name), *extra])
        assert r.exit_code == 0, (name, r.output, r.stderr)
    r = CliRunner().invoke(main, ["unroll", str(folder / "img_stack.npz"), "-o",
                                  str(folder / "img_unrolled.npz")])
    assert r.exit_code == 0, (r.output, r.stderr)
    return ["img_mlp.npz", "img_unrolled.npz"], list(stacks), ["img_x.npy"]


def _importable(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def build_seeds(folder):
    """Good files of every readable format in folder → [Seed]; the formats whose library is not
    installed are left out (see missing_libraries)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mlps = _write_numpy_family(folder)
    for module, write in OPTIONAL.items():
        if _importable(module):
            with warnings.catch_warnings():     # the frameworks' own deprecations
                warnings.simplefilter("ignore")
                mlps += write(folder)
    stacks = _convert_stacks(folder)
    base = {"mlp": str(folder / "mlp.npz"), "stack": str(folder / "stack.npz"),
            "input": str(folder / "x.npy"), "stride": S, "channels": C}
    homework = dict(base, input=str(folder / "homework_input.asc"), stride=4, channels=24)
    roles = ([(n, "mlp") for n in mlps] + [(n, "stack") for n in stacks]
             + [(n, "input") for n in ["x.asc", "x.npy", "x.npz"]])
    seeds = []
    for name, role in roles:
        data = (folder / name).read_bytes()
        seeds.append(Seed(name, _kind(name, data), role, str(folder / name), data,
                          homework if name == "homework.npy" else base))
    image = {"mlp": str(folder / "img_mlp.npz"), "stack": str(folder / "img_stack.npz"),
             "input": str(folder / "img_x.npy"), "stride": "4x4", "channels": 3, "kernel": "8x8"}
    for names, role in zip(_image_files(folder), ("mlp", "stack", "input")):
        for name in names:
            data = (folder / name).read_bytes()
            seeds.append(Seed(name, _kind(name, data), role, str(folder / name), data, image))
    return seeds


def missing_libraries():
    return [m for m in list(OPTIONAL) + ["onnx"] if not _importable(m)]


def make_cases(seeds, count, seed, folder, mutated=True, mutator=mutate):
    """count mutated files (round robin over the seeds) in folder, each with every command that
    reads it → [case dict]. With mutated=False, the seeds themselves; mutator(kind, data,
    other, rng) → (bytes, description): the byte and format mutations, or mutate_structure."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    for i in range(count):
        s = seeds[i % len(seeds)]
        rng = random.Random(f"{seed}/{i}")
        data, how = (mutator(s.kind, s.data, rng.choice(seeds).data, rng) if mutated else
                     (s.data, "none"))
        path = folder / f"m{i:05d}{s.suffix}"
        path.write_bytes(data)
        for j, argv in enumerate(s.commands(path, "{out}")):
            out = str(folder / f"out{i:05d}_{j}")
            cases.append({"index": i, "seed": s.name, "mutation": how, "file": str(path),
                          "argv": [a.replace("{out}", out) for a in argv], "out": out})
    return cases


# ---- structural mutations: sizes and fields that byte flips seldom reach together

def empty_axis(data, rng, other):
    """An npy whose shape has a zero axis, the others kept or made huge: no bytes to read."""
    parts = _npy_parts(data)
    if parts is None:
        return data, "npy empty-axis (no header)"
    header = parts[1]
    shape = [int(d) for d in re.findall(r"\d+", re.search(r"'shape': \(([^)]*)\)", header).group(1))]
    shape = shape or [1]
    zero = rng.randrange(len(shape))
    shape = [0 if i == zero else rng.choice([d, 2**31, 2**62]) for i, d in enumerate(shape)]
    shown = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
    return _npy_join(re.sub(r"'shape': \([^)]*\)", f"'shape': {shown}", header), b""), \
        f"npy empty-axis shape={shown}"


_CENTRAL = {"flags": (8, "<H"), "method": (10, "<H"), "compressed": (20, "<L"),
            "size": (24, "<L"), "extra": (30, "<H"), "offset": (42, "<L")}
_VALUES = {"flags": [1, 8, 0x41, 0x2000], "method": [1, 6, 9, 12, 14, 98, 99, 0xffff],
           "extra": [0xffff, 4, 20]}


def zip_fields(data, rng, other):
    """One field of one central-directory entry of a zip set to a value that lies: the member
    encrypted, compressed by a method no reader has, sizes or offsets past the file."""
    entries = [m.start() for m in re.finditer(rb"PK\x01\x02", data)]
    if not entries:
        return data, "zip fields (no directory)"
    at, field_name = rng.choice(entries), rng.choice(sorted(_CENTRAL))
    offset, fmt = _CENTRAL[field_name]
    value = rng.choice(_VALUES.get(field_name, INTERESTING)) % 2**(8 * struct.calcsize(fmt))
    b = bytearray(data)
    if at + offset + struct.calcsize(fmt) > len(b):
        return data, "zip fields (short entry)"
    struct.pack_into(fmt, b, at + offset, value)
    return bytes(b), f"zip central {field_name}={value:#x}"


def zero_beside_huge(data, rng, other):
    """A safetensors tensor whose shape holds a zero beside dimensions of 2**62 (no bytes)."""
    n = int.from_bytes(data[:8], "little")
    try:
        header = json.loads(data[8:8 + n])
    except ValueError:
        return data, "safetensors zero-beside-huge (no header)"
    names = sorted(k for k in header if k != "__metadata__")
    if not names:
        return data, "safetensors zero-beside-huge (no tensors)"
    name = rng.choice(names)
    header[name]["shape"] = rng.choice([[0, 2**62, 2**62], [2**40, 0], [0] * 40, [2**63 - 1, 0]])
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + data[8 + n:], \
        f"safetensors {name} shape={header[name]['shape'][:3]}"


STRUCTURAL = {"npy": empty_axis, "zip": zip_fields, "safetensors": zero_beside_huge}


def mutate_structure(kind, data, other, rng):
    """A structural mutation for the kinds that have one, else the usual ones."""
    if kind in STRUCTURAL:
        return STRUCTURAL[kind](data, rng, other)
    return mutate(kind, data, other, rng)


# ---- checks

def problems(case, result):
    """What is wrong with one run: [] when it kept the command-line contract."""
    if "crash" in result:
        return [result["crash"]]
    found, code = [], result["exit"]
    out, err = result["stdout"], result["stderr"]
    lines = err.splitlines()
    if code not in EXIT_OK:
        found.append(f"exit {code}")
    if "Traceback" in err:
        found.append("a traceback on stderr")
    if len(lines) > 1:
        found.append(f"{len(lines)} lines on stderr")
    if code == 3 and not (len(lines) == 1 and lines[0].startswith("error: ")):
        found.append("exit 3 without one 'error:' line")
    if any(len(line) > MAX_LINE for line in lines):
        found.append(f"a stderr line of {max(map(len, lines)):,} characters")
    if CONTROL.search(err) or CONTROL.search(out):
        found.append("control characters in the output")
    if result["stray"]:
        found.append(f"output outside Python's streams: {result['stray'][:80]!r}")
    if code != 0 and result["left"]:
        found.append(f"files left after exit {code}: {result['left']}")
    if result["peak_rss"] > MEMORY:
        found.append(f"peak memory {result['peak_rss'] / 2**20:,.0f} MiB")
    return found + _stdout_problems(case, code, out)


def _stdout_problems(case, code, out):
    if "--json" in case["argv"]:
        try:
            obj, = [json.loads(line) for line in out.splitlines()]
        except ValueError:
            return [f"stdout is not one JSON object: {out[:80]!r}"]
        if not isinstance(obj, dict) or (obj.get("exit_code"), obj.get("ok")) != (code, code == 0):
            return [f"JSON exit_code/ok do not match exit {code}"]
        return []
    if code in (0, 1) and not out.strip():
        return ["no report on stdout"]
    if code == 3 and out:
        return [f"output on stdout with exit 3: {out[:80]!r}"]
    return []


def describe(case, result, found):
    """One failure, as a line a person can act on (files by their names alone)."""
    argv = " ".join(os.path.basename(a) if a.startswith("/") else a for a in case["argv"])
    err = (result.get("stderr") or "").splitlines()
    first = CONTROL.sub(lambda m: ascii(m.group())[1:-1], err[0][:200]) if err else ""
    return (f"{case['seed']} [{case['mutation']}] scan2conv {argv}: exit {result.get('exit')}"
            + (f": {'; '.join(found)}" if found else "") + (f" | {first}" if first else ""))


# ---- the worker processes

def run_cases(cases, jobs=1, timeout=CASE_TIMEOUT, progress=None):
    """Run every case in worker processes (jobs at a time) → one result dict per case."""
    results = [None] * len(cases)
    slices = [list(range(j, len(cases), jobs)) for j in range(jobs)]
    with tempfile.TemporaryDirectory() as tmp:
        def drive(indices, n):
            job = Path(tmp) / f"job{n}.json"
            job.write_text(json.dumps([cases[i] for i in indices]))
            done = 0
            while done < len(indices):
                done = _drive_worker(job, done, len(indices), timeout,
                                     lambda k, r: _store(results, indices[k], r, progress))
        if jobs == 1:
            drive(slices[0], 0)
        else:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(jobs) as pool:
                list(pool.map(drive, slices, range(jobs)))
    return results


def _store(results, i, result, progress):
    results[i] = result
    if progress:
        progress(i, result)


def _drive_worker(job, start, total, timeout, store):
    """One worker from case start on, until the last case or a case that kills it; the index to
    go on from."""
    rfd, wfd = os.pipe()
    env = dict(os.environ, KERAS_BACKEND="torch", OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    proc = subprocess.Popen([sys.executable, __file__, "--worker", str(job), str(start), str(wfd)],
                            pass_fds=(wfd,), env=env, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    os.close(wfd)
    current, buf = None, b""
    deadline = time.monotonic() + 120      # the warm-up imports torch
    with os.fdopen(rfd, "rb", buffering=0) as pipe:
        while True:
            if not select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))[0]:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return _lost(current, store, f"no answer within {timeout:g} s (killed)")
            chunk = pipe.read(1 << 16)
            if not chunk:
                rc = proc.wait()
                why = (f"killed by {signal.Signals(-rc).name}" if rc < 0 else
                       f"the process exited {rc} without finishing the command")
                return _lost(current, store, why) if current is not None else total
            buf += chunk
            *messages, buf = buf.split(b"\n")
            for message in map(json.loads, messages):
                if "start" in message:
                    current = message["start"]
                else:
                    store(message.pop("done"), message)
                    current = None
                deadline = time.monotonic() + timeout


def _lost(current, store, why):
    if current is None:
        raise RuntimeError(f"the fuzz worker failed before its first case: {why}")
    store(current, {"crash": why, "exit": None, "stderr": "", "stdout": ""})
    return current + 1


def _peak_rss_reset():
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _status(key):
    match = re.search(rf"{key}:\s+(\d+) kB", Path("/proc/self/status").read_text())
    return int(match.group(1)) * 1024


def _warm_up():
    """Import the commands, then cap the address space: a file that makes a reader (with the
    frameworks it imports) allocate MEMORY more fails inside that case."""
    import resource
    from scan2conv.cli import LAZY_COMMANDS, main
    for name in LAZY_COMMANDS:
        main.get_command(None, name)
    limit = _status("VmSize") + MEMORY
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return main


def _invoke(main, runner, case):
    """(exit code, stdout, stderr) of the command line, or of case["call"] = [module,
    function, args] (how the tests check that crashes, hangs and memory are caught)."""
    import importlib
    import traceback
    if "call" in case:
        module, function, args = case["call"]
        try:
            getattr(importlib.import_module(module), function)(*args)
            return 0, "", ""
        except Exception as e:
            return 1, "", "Traceback (most recent call last):\n" + "".join(
                traceback.format_exception(e))
    r = runner.invoke(main, case["argv"], catch_exceptions=True)
    code, out, err = r.exit_code, r.stdout, r.stderr
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        err += "Traceback (most recent call last):\n" + "".join(
            traceback.format_exception(r.exception))
    with _late_output() as late:
        del r
    return code, out, err + late.getvalue()


@contextlib.contextmanager
def _late_output():
    """What freeing a run's objects prints ("Exception ignored in …"): a fresh process would
    print it at exit, so it belongs to this run, not to whichever run happens to free it."""
    late = io.StringIO()
    with contextlib.redirect_stderr(late):
        yield late
        gc.collect()
    gc.freeze()     # what lives on (modules, caches) is not scanned again after every run


def _run_one(main, runner, case):
    out = Path(case["out"])
    out.mkdir(parents=True, exist_ok=True)
    sizes = [os.fstat(fd).st_size for fd in (1, 2)]
    base = _status("VmRSS")
    _peak_rss_reset()
    t = time.monotonic()
    with warnings.catch_warnings():    # every case shows its warnings, as a fresh process would
        code, stdout, stderr = _invoke(main, runner, case)
    seconds = time.monotonic() - t
    stray = b"".join(os.pread(fd, 4096, size) for fd, size in zip((1, 2), sizes))
    left = sorted(os.listdir(out))
    shutil.rmtree(out, ignore_errors=True)
    return {"exit": code, "stdout": stdout[:20000], "stderr": stderr[:200000],
            "stray": stray.decode("latin1"), "left": left, "seconds": round(seconds, 3),
            "peak_rss": max(0, _status("VmHWM") - base)}


def worker_main(job, start, fd):
    """Run the cases of job from start, reporting each on fd: {"start": i}, then its result."""
    from click.testing import CliRunner
    main = _warm_up()
    capture = tempfile.TemporaryFile()
    for target in (1, 2):      # C-level writes land here, where each case can see its own
        os.dup2(capture.fileno(), target)
    runner = CliRunner()
    cases = json.loads(Path(job).read_text())
    with os.fdopen(fd, "wb", buffering=0) as pipe:
        for i in range(start, len(cases)):
            pipe.write(json.dumps({"start": i}).encode() + b"\n")
            result = _run_one(main, runner, cases[i])
            pipe.write(json.dumps({"done": i, **result}).encode() + b"\n")


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    os.chdir(tempfile.gettempdir())
    worker_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
