"""Every benchmark in one run: engine vs torch (sequences and images) and the GEMM peak, start-up
latency, long scans' memory and speed against ONNX Runtime, an image scan's memory, and batch verify.
Usage: python benchmarks/run_all.py"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import batch_files  # noqa: E402
import engine  # noqa: E402
import engine2d  # noqa: E402
import latency  # noqa: E402
import scan_image_memory  # noqa: E402
import scan_memory  # noqa: E402
from common import machine_header  # noqa: E402


def main():
    print(machine_header())
    results = {}
    for name, run in (("engine", lambda: engine.main([])), ("engine2d", lambda: engine2d.main([])),
                      ("latency", latency.main),
                      ("scan", lambda: scan_memory.main([])),
                      ("image scan", lambda: scan_image_memory.main([])), ("batch", batch_files.main)):
        print(flush=True)
        results[name] = run()
    print()
    print("targets: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
