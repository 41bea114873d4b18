"""Seeded byte mutations of a good file of every format scan2conv reads, each run through every
command that reads it, in worker processes: exit 0, 1 or 3, at most one clean line on stderr (no
traceback, no warning, no control characters), no signal, bounded time and memory, sane stdout,
no output left behind. tools/fuzz.py runs thousands of the same cases.
"""
import pytest

from fuzzing import (STRUCTURAL, build_seeds, describe, make_cases, missing_libraries,
                     mutate_structure, problems, run_cases)
from scan2conv.formats import READERS, family_of

FILES = 240          # mutated files, round robin over the seeds: about 800 command runs
SEED = 0


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return build_seeds(tmp_path_factory.mktemp("fuzz_seeds"))


@pytest.fixture(scope="module")
def runs(seeds, tmp_path_factory):
    """(case, result) for the seeds themselves and for the mutated files, run together."""
    folder = tmp_path_factory.mktemp("fuzz_cases")
    good = make_cases(seeds, len(seeds), SEED, folder / "good", mutated=False)
    mutated = make_cases(seeds, FILES, SEED, folder / "mutated")
    results = run_cases(good + mutated)
    return list(zip(good, results)), list(zip(mutated, results[len(good):]))


def test_the_seeds_cover_every_reader(seeds):
    families = {family_of(s.path) for s in seeds if s.role != "input"}
    missing = missing_libraries()
    assert families == {f for f in READERS if f not in missing}
    assert {s.role for s in seeds} == {"mlp", "stack", "input"}
    images = {s.role for s in seeds if "kernel" in s.context}   # image MLPs, stacks and inputs
    assert images == {"mlp", "stack", "input"}


def test_the_seeds_pass_every_command(runs):
    good, _ = runs
    failures = [describe(c, r, p) for c, r in good if (p := problems(c, r)) or r["exit"] != 0]
    assert not failures, "\n".join(failures)


def test_mutated_files_keep_the_command_line_contract(runs):
    _, mutated = runs
    assert len({c["index"] for c, _ in mutated}) == FILES
    failures = [describe(c, r, p) for c, r in mutated if (p := problems(c, r))]
    assert not failures, (f"{len(failures)} of {len(mutated)} runs broke the contract "
                          f"(replay: python tools/fuzz.py --count {FILES} --seed {SEED}):\n"
                          + "\n".join(failures[:40]))


def test_the_mutations_reach_every_outcome(runs):
    """A fuzz loop whose mutations were all refused at the first byte would test little."""
    _, mutated = runs
    codes = {r["exit"] for _, r in mutated}
    assert {0, 3} <= codes
    assert len({c["mutation"].split()[0] for c, _ in mutated}) >= 15


def test_crashes_hangs_and_memory_are_caught_and_the_run_goes_on(tmp_path):
    """A segfault, a hang and an allocation past the budget, each followed by a good run (the
    embedded default), which a fresh worker then runs."""
    good = {"argv": ["verify"], "out": str(tmp_path / "good")}

    def call(module, function, *args):
        return dict(good, call=[module, function, list(args)])
    cases = [call("ctypes", "string_at", 0), good, call("time", "sleep", 60), good,
             call("builtins", "bytearray", 3 * 2**31), good]
    results = run_cases(cases, timeout=4)
    assert results[0]["crash"] == "killed by SIGSEGV"
    assert results[2]["crash"].startswith("no answer within 4 s")
    assert "MemoryError" in results[4]["stderr"]
    assert "a traceback on stderr" in problems(cases[4], results[4])
    assert [problems(good, r) for r in results[1::2]] == [[], [], []]


def test_structural_mutations_keep_the_command_line_contract(seeds, tmp_path):
    """One file per seed that has them: npy shapes with an axis of 0 beside huge ones, zip
    directory fields that lie, safetensors zeros beside dimensions of 2**62."""
    chosen = [s for s in seeds if s.kind in STRUCTURAL]
    cases = make_cases(chosen, len(chosen), SEED, tmp_path, mutator=mutate_structure)
    assert {c["mutation"].split()[0] for c in cases} == {"npy", "zip", "safetensors"}
    failures = [describe(c, r, p) for c, r in zip(cases, run_cases(cases)) if (p := problems(c, r))]
    assert not failures, "\n".join(failures)
