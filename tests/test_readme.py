"""The README as a script: every `console` block runs, in order, in one fresh folder, and prints
exactly what the README shows.

Convention (README, "Commands"): in a ```console block a line starting with `$ ` is a command
(`# …` at its end is a comment); the lines after it, up to the next `$ ` line, are what it prints,
stdout and stderr in the order written. The folder is `try/` beside links to the repository's
fixtures/ and examples/, as a reader who runs `mkdir try && cd try` in the repository root has it. Only figures
that vary from run to run or machine to machine are masked: times, dates, and floating-point
rounding errors below 1e-9 (their digits depend on the BLAS and the CPU).

    python tests/test_readme.py --update    # rewrite the outputs in README.md from a real run
"""
import os
import re
import subprocess
import sys


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
BLOCK = re.compile(r"^```console\n(.*?)^```\n", re.M | re.S)
# what varies from run to run or machine to machine: times, dates, rounding errors
VARYING = [(re.compile(r"\b\d+(\.\d+)? ?(ms|s)\b"), "<time>"),
           (re.compile(r"\d{4}-\d\d-\d\d( \d\d:\d\d(:\d\d)?)?( UTC)?"), "<date>"),
           (re.compile(r"\b\d(\.\d+)?e-(09|[1-9]\d)\b"), "<rounding>")]
# a command naming one of these needs that package (installed in CI, optional elsewhere)
NEEDS = {"torch": re.compile(r"\.pt\b|--print torch"), "onnx": re.compile(r"onnx"),
         "keras": re.compile(r"keras"), "matplotlib": re.compile(r"--plot")}


def examples(text):
    """[(command, expected output, offset of the output in text)] of every console block."""
    out = []
    for block in BLOCK.finditer(text):
        command, lines, pos = None, [], block.start(1)
        out_start = pos
        for line in block.group(1).splitlines(keepends=True):
            if line.startswith("$ "):
                if command is not None:
                    out.append((command, "".join(lines), out_start))
                command, lines, out_start = line[2:].rstrip("\n"), [], pos + len(line)
            elif command is None:
                raise ValueError(f"README: a console block starts with {line!r}, not a `$ ` command")
            else:
                lines.append(line)
            pos += len(line)
        if command is not None:
            out.append((command, "".join(lines), out_start))
    return out


def mask(text):
    for pattern, placeholder in VARYING:
        text = pattern.sub(placeholder, text)
    return text


def missing_package(command):
    import importlib.util
    return next((name for name, pattern in NEEDS.items()
                 if pattern.search(command.split(" #")[0]) and importlib.util.find_spec(name) is None), None)


def fresh_folder(base):
    """base/try, empty, with base/fixtures and base/examples → the repository's folders."""
    for name in ("fixtures", "examples"):
        os.symlink(os.path.join(ROOT, name), os.path.join(base, name))
    folder = os.path.join(base, "try")
    os.mkdir(folder)
    return folder


def run(command, folder):
    env = dict(os.environ, PYTHONUNBUFFERED="1", KERAS_BACKEND="torch", COLUMNS="100",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    env.pop("PYTHONIOENCODING", None)
    p = subprocess.run(["bash", "-c", command], cwd=folder, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300)
    return p.stdout.decode()


def test_masks_only_what_varies():
    assert mask("max |error| 3.64e-12; in 1.5 s on 2026-11-26 12:09 UTC") == (
        "max |error| <rounding>; in <time> on <date>")
    assert mask("max |error| 0.5; 89,999 positions; 1e-05, 1e-08") == (
        "max |error| 0.5; 89,999 positions; 1e-05, 1e-08")


def test_readme_blocks_parse():
    found = examples(open(README, encoding="utf-8").read())
    commands = [c for c, _, _ in found]
    assert commands[0].startswith("python ../fixtures/make_fixtures.py --examples .")
    assert len(commands) >= 20 and all(c.strip() for c in commands)


def test_every_readme_example_prints_what_it_shows(tmp_path):
    folder = fresh_folder(str(tmp_path))
    for command, expected, _ in examples(open(README, encoding="utf-8").read()):
        if missing_package(command):
            continue
        got = run(command, folder)
        assert mask(got) == mask(expected), f"$ {command}"


def update():
    """Rewrite every example's output in README.md with what it prints now."""
    import tempfile
    text = open(README, encoding="utf-8").read()
    with tempfile.TemporaryDirectory() as base:
        folder = fresh_folder(base)
        found = examples(text)
        outputs = [run(command, folder) for command, _, _ in found]
    for (command, expected, start), got in reversed(list(zip(found, outputs))):
        text = text[:start] + got + text[start + len(expected):]
    with open(README, "w", encoding="utf-8") as fp:
        fp.write(text)


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(__doc__)
    update()
