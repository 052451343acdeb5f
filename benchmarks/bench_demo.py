"""Time ``promolift demo`` end to end: wall time and peak memory over repeated fresh runs.

Usage::

    python benchmarks/bench_demo.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    promolift = Path(sys.executable).with_name("promolift")
    walls, peaks = [], []
    for _ in range(args.repeats):
        out = Path(tempfile.mkdtemp())
        script = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
                  "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", script, str(promolift), "demo", "--out", str(out)],
                              check=True, capture_output=True, text=True)
        walls.append(time.perf_counter() - start)
        peaks.append(int(done.stdout.split()[-1]) / 1024)
        shutil.rmtree(out, ignore_errors=True)
    print(f"# promolift demo, {args.repeats} runs, {os.cpu_count()} cores\n")
    print("| wall s (median) | min | max | peak RSS MB (max) |\n| ---: | ---: | ---: | ---: |")
    print(f"| {statistics.median(walls):.1f} | {min(walls):.1f} | {max(walls):.1f} | {max(peaks):.0f} |")
    print("\nruns: " + ", ".join(f"{w:.1f} s" for w in walls))


if __name__ == "__main__":
    main()
