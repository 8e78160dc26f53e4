#!/usr/bin/env python3
"""Times cpc and the PyTorch reference side by side on the paper's audio model.

For every configuration (mode, batch, threads) and every repetition it runs, one process each
and interleaved: cpc's bench_train_step (Google Benchmark, one timed step after a warm-up), the
PyTorch reference with the loss gathered from one score GEMM ("gathered"), and the PyTorch
reference with the loss written as public CPC code writes it ("public"). It prints a table of
the medians: wall seconds per step, CPU seconds per step, cpc's time as a fraction of each
PyTorch variant's, peak RSS of each process, and GFLOP/s of the analytic FLOP count (the same
count on both sides, see bench/bench_train_step.cpp).

Environment of each side, printed with the table:
  cpc      glibc malloc after cpc::configure_allocator() (what the benchmark does);
           threads via cpc::set_num_threads.
  PyTorch  /usr/bin/python3 with Debian's python3-torch; jemalloc preloaded
           (LD_PRELOAD=libjemalloc.so.2, Debian libjemalloc2) when present, as PERF.md measured
           (glibc's malloc makes PyTorch's step many times slower); OpenBLAS (Debian
           libopenblas0-pthread) put in front of the system's libblas.so.3 with LD_LIBRARY_PATH
           when present (with the reference BLAS, PyTorch's matrix products are ~10x slower);
           torch.set_num_threads, OMP_NUM_THREADS and OPENBLAS_NUM_THREADS = threads.
Where /usr/bin/python3 cannot import torch, it says so and exits 0 (cpc's side is still shown).

Usage: bench/compare.py [--bench build/bench/bench_train_step] [--mode train encode]
                        [--batch 8 16 32] [--encode-batch 32] [--threads 1 2] [--reps 3]
                        [--autogroup-nice -15]
"""
import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TORCH_PYTHON = "/usr/bin/python3"
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
OPENBLAS_DIR = "/usr/lib/x86_64-linux-gnu/openblas-pthread"
# Peak memory of the public-style step, measured: about 0.53 GB per batch item.
PUBLIC_BYTES_PER_ITEM = 0.53e9


def find_bench():
    cands = sorted(glob.glob(os.path.join(ROOT, "build*", "bench", "bench_train_step")), key=os.path.getmtime)
    return cands[-1] if cands else None


def torch_available():
    if not os.path.exists(TORCH_PYTHON):
        return False, TORCH_PYTHON + " not found"
    r = subprocess.run([TORCH_PYTHON, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True)
    if r.returncode != 0:
        return False, "python3-torch is not installed (" + TORCH_PYTHON + " cannot import torch)"
    return True, r.stdout.strip()


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def torch_env(threads):
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    if os.path.exists(JEMALLOC):
        env["LD_PRELOAD"] = JEMALLOC
    if os.path.isdir(OPENBLAS_DIR):
        env["LD_LIBRARY_PATH"] = OPENBLAS_DIR + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    return env


AUTOGROUP_NICE = None  # set from --autogroup-nice


def child_setup():
    """Runs each timed process in a session (scheduler autogroup) of its own, optionally with a
    raised autogroup priority, so that a loaded shared machine still gives it the CPUs it asks for."""
    if AUTOGROUP_NICE is None:
        return
    os.setsid()
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(AUTOGROUP_NICE))
    except OSError:
        pass


def run_cpc(bench, mode, batch, threads):
    name = "bm_train_step" if mode == "train" else "bm_encode"
    filt = "^%s/batch:%d/threads:%d/" % (name, batch, threads)
    r = subprocess.run([bench, "--benchmark_filter=" + filt, "--benchmark_min_time=0", "--benchmark_format=json"],
                       capture_output=True, text=True, preexec_fn=child_setup)
    if r.returncode != 0:
        raise RuntimeError("bench_train_step failed: " + r.stderr[-2000:])
    b = [x for x in json.loads(r.stdout)["benchmarks"] if x.get("run_type", "iteration") == "iteration"]
    if not b:
        raise RuntimeError("bench_train_step has no benchmark matching " + filt)
    x = b[0]
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[x.get("time_unit", "ns")]
    return {"seconds": x["real_time"] * scale, "cpu_seconds": x["cpu_time"] * scale,
            "peak_rss_bytes": x["peak-RSS"], "gflops": x["GFLOP/s"]}


def run_torch(variant, mode, batch, threads, steps):
    r = subprocess.run([TORCH_PYTHON, os.path.join(HERE, "pytorch_reference.py"), "--variant", variant, "--mode", mode,
                        "--batch", str(batch), "--threads", str(threads), "--steps", str(steps)],
                       capture_output=True, text=True, env=torch_env(threads), preexec_fn=child_setup)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def gib(n):
    return "%.2f GB" % (n / 1e9)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=None, help="path of bench_train_step (default: newest build*/bench/)")
    ap.add_argument("--mode", nargs="+", default=["train"], choices=["train", "encode"])
    ap.add_argument("--batch", nargs="+", type=int, default=[8], help="train-step batches (8, 16, 32)")
    ap.add_argument("--encode-batch", nargs="+", type=int, default=[32], help="encode batches (32)")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--reps", type=int, default=3, help="processes per side and configuration (median reported)")
    ap.add_argument("--torch-steps", type=int, default=1, help="timed steps per PyTorch process")
    ap.add_argument("--variants", nargs="+", default=["gathered", "public"], choices=["gathered", "public"])
    ap.add_argument("--autogroup-nice", type=int, default=None,
                    help="run each timed process in a scheduler autogroup of its own with this nice value "
                         "(e.g. -15, needs root): on a machine shared with other sessions, Linux's autogroups "
                         "otherwise give the whole session one share of the CPUs, whatever its thread count")
    a = ap.parse_args()
    global AUTOGROUP_NICE
    AUTOGROUP_NICE = a.autogroup_nice

    bench = a.bench or find_bench()
    if not bench or not os.path.exists(bench):
        print("compare: bench_train_step not found; build it first:\n"
              "  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCPC_NATIVE=ON && "
              "cmake --build build --target bench_train_step")
        return 1
    have_torch, why = torch_available()
    print("cpc:     %s (glibc malloc + cpc::configure_allocator)" % bench)
    if have_torch:
        print("PyTorch: %s %s, allocator: %s, BLAS: %s, OPENBLAS_CORETYPE=%s" % (
            TORCH_PYTHON, why, "jemalloc (LD_PRELOAD)" if os.path.exists(JEMALLOC) else "glibc (libjemalloc2 missing!)",
            "OpenBLAS (" + OPENBLAS_DIR + ")" if os.path.isdir(OPENBLAS_DIR) else "system libblas.so.3",
            os.environ.get("OPENBLAS_CORETYPE", "(unset: OpenBLAS detects the CPU)")))
    else:
        print("PyTorch: skipped - %s. Install Debian's python3-torch to compare; showing cpc only." % why)
    if a.autogroup_nice is not None:
        print("each timed process runs in an autogroup of its own, nice %d" % a.autogroup_nice)
    print("load average before: %s" % open("/proc/loadavg").read().split()[:3])

    results = {}  # (mode, batch, threads, side) -> list of runs
    skipped = {}
    configs = [(m, b, t) for m in a.mode for b in (a.batch if m == "train" else a.encode_batch) for t in a.threads]
    for rep in range(a.reps):
        for (m, b, t) in configs:
            sides = ["cpc"]
            if have_torch:
                sides += ["pytorch-" + v for v in a.variants if not (m == "encode" and v == "public")]
            for side in sides:
                key = (m, b, t, side)
                if side == "pytorch-public" and m == "train" and b * PUBLIC_BYTES_PER_ITEM > 0.7 * mem_available():
                    skipped[key] = "needs ~%s, %s available" % (gib(b * PUBLIC_BYTES_PER_ITEM), gib(mem_available()))
                    continue
                if side == "cpc":
                    r = run_cpc(bench, m, b, t)
                else:
                    r = run_torch(side.split("-")[1], m, b, t, a.torch_steps)
                results.setdefault(key, []).append(r)
                print("  rep %d %-6s batch %2d threads %d %-17s %s" % (
                    rep + 1, m, b, t, side,
                    r.get("error") or "%.3f s (cpu %.3f s)" % (r["seconds"], r["cpu_seconds"])), flush=True)
    print("load average after: %s" % open("/proc/loadavg").read().split()[:3])

    print()
    print("| mode | batch | threads | side | wall s/step | CPU s/step | cpc / side (wall) | cpc / side (CPU) | peak RSS | GFLOP/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (m, b, t) in configs:
        base = results.get((m, b, t, "cpc"))
        cw = statistics.median(x["seconds"] for x in base)
        cc = statistics.median(x["cpu_seconds"] for x in base)
        for side in ["cpc", "pytorch-gathered", "pytorch-public"]:
            key = (m, b, t, side)
            if key in skipped:
                print("| %s | %d | %d | %s | skipped: %s | | | | | |" % (m, b, t, side, skipped[key]))
                continue
            runs = [x for x in results.get(key, []) if "error" not in x]
            if not runs:
                errs = [x["error"] for x in results.get(key, [])]
                if errs:
                    print("| %s | %d | %d | %s | failed: %s | | | | | |" % (m, b, t, side, errs[-1][:80]))
                continue
            w = statistics.median(x["seconds"] for x in runs)
            c = statistics.median(x["cpu_seconds"] for x in runs)
            rss = max(x["peak_rss_bytes"] for x in runs)
            gf = statistics.median(x["gflops"] for x in runs)
            print("| %s | %d | %d | %s | %.3f | %.3f | %s | %s | %s | %.1f |" % (
                m, b, t, side, w, c, "%.2f" % (cw / w), "%.2f" % (cc / c), gib(rss), gf))
    if not have_torch:
        print("\nPyTorch side skipped: %s." % why)
    return 0


if __name__ == "__main__":
    sys.exit(main())
