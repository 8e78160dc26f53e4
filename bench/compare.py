#!/usr/bin/env python3
"""Times cpc and the PyTorch reference side by side on the paper's audio model.

For every configuration (mode, batch, threads) and every repetition it runs, one process each
and interleaved: cpc's bench_train_step (Google Benchmark: the machine's FMA peak is measured in
that process first, then one warm-up step and the timed steps), the PyTorch reference
(bench/pytorch_reference.py) with each loss variant asked for ("gathered": one score GEMM, the
default; "public": the loss as public CPC code writes it), and optionally an outside PyTorch
yardstick (--yardstick PATH, a script with cpc_torch.py's command line). It prints a table of
medians: wall and CPU seconds per step, peak RSS, GFLOP/s of the analytic FLOP count (the same
count on every side, see bench/bench_train_step.cpp) and that as a fraction of the machine's FMA
peak for the thread count (measured by the cpc process of the same repetition, vectors of cpc's
build), and cpc's time over the FASTEST PyTorch variant of the configuration (the yardstick is
shown for reference and not counted as a variant). With --cpc-bf16, a second cpc side runs the
same benchmark with the convolutions' products in bf16 (bm_*_bf16: Intel AMX; where the build or
the CPU lacks it the row says why).

Environment of each side, printed with the table:
  cpc      glibc malloc after cpc::configure_allocator() (what the benchmark does);
           threads via cpc::set_num_threads.
  PyTorch  /usr/bin/python3 with Debian's python3-torch; pytorch_reference.py re-executes itself
           with jemalloc preloaded (page decay off), OpenBLAS in front of the system BLAS and
           OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed (OpenBLAS's own CPU detection: AVX-512
           kernels; --keep-coretype keeps the environment's); torch.set_num_threads,
           OMP_NUM_THREADS and OPENBLAS_NUM_THREADS = threads. The yardstick runs with --obauto.
Where /usr/bin/python3 cannot import torch, it says so and exits 0 (cpc's side is still shown).

Usage: bench/compare.py [--bench build/bench/bench/bench_train_step] [--mode train encode]
                        [--batch 8] [--encode-batch 32] [--threads 1 2] [--reps 3] [--torch-steps 3]
                        [--variants gathered public] [--yardstick ../shared/bench/cpc_torch.py]
                        [--keep-coretype] [--autogroup-nice -15] [--cpc-bf16]
(the defaults shown; --batch takes any of 8 16 32, --mode encode runs --encode-batch)
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TORCH_PYTHON = "/usr/bin/python3"
# Peak memory of the public-style step, measured: about 0.53 GB per batch item.
PUBLIC_BYTES_PER_ITEM = 0.53e9


def find_bench():
    cands = glob.glob(os.path.join(ROOT, "build*", "bench", "bench_train_step")) + \
        glob.glob(os.path.join(ROOT, "build*", "*", "bench", "bench_train_step"))
    cands.sort(key=os.path.getmtime)
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


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


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


def run_cpc(bench, mode, batch, threads, bf16=False):
    name = ("bm_train_step" if mode == "train" else "bm_encode") + ("_bf16" if bf16 else "")
    filt = "^%s/batch:%d/threads:%d/" % (name, batch, threads)
    r = subprocess.run([bench, "--benchmark_filter=" + filt, "--benchmark_min_time=0", "--benchmark_format=json"],
                       capture_output=True, text=True, preexec_fn=child_setup)
    if r.returncode != 0:
        raise RuntimeError("bench_train_step failed: " + r.stderr[-2000:])
    d = json.loads(r.stdout)
    b = [x for x in d["benchmarks"] if x.get("run_type", "iteration") == "iteration"]
    if not b:
        raise RuntimeError("bench_train_step has no benchmark matching " + filt)
    x, ctx = b[0], d.get("context", {})
    if x.get("error_occurred"):
        return {"error": x.get("error_message", "skipped")}
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[x.get("time_unit", "ns")]
    # The FMA peak of `threads` threads for the vectors of cpc's build, as support/peak.hpp defines it.
    isa = "fma512" if ctx.get("peak_isa") == "avx512" else "fma256"
    one, allt = float(ctx.get("peak_%s_gflops_1t" % isa, 0)), float(ctx.get("peak_%s_gflops_all" % isa, 0))
    n = int(ctx.get("peak_threads", 1))
    peak = one if threads <= 1 or n <= 1 else (allt * threads / n if threads >= n else
                                                one + (allt - one) * (threads - 1) / (n - 1))
    return {"seconds": x["real_time"] * scale, "cpu_seconds": x["cpu_time"] * scale,
            "peak_rss_bytes": x["peak-RSS"], "gflops": x["GFLOP/s"], "peak": peak}


def run_torch(variant, mode, batch, threads, steps, keep_coretype):
    cmd = [TORCH_PYTHON, os.path.join(HERE, "pytorch_reference.py"), "--variant", variant, "--mode", mode,
           "--batch", str(batch), "--threads", str(threads), "--steps", str(steps)]
    if keep_coretype:
        cmd.append("--keep-coretype")
    r = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=child_setup)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_yardstick(path, mode, batch, threads, steps):
    cmd = [TORCH_PYTHON, path, "--mode", mode, "--batch", str(batch), "--threads", str(threads),
           "--steps", str(steps), "--warmup", "1", "--obauto"]
    if mode == "train":
        cmd += ["--loss", "fused"]
    r = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=child_setup)
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT")]
    if r.returncode != 0 or not line:
        return {"error": (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]}
    # "... | median 2221.6 ms/step (min ..., CPU 2164 ms/step) | ... | 166.4 GFLOP/step -> ..."
    text = line[0]
    med = float(text.split("median ")[1].split(" ms/step")[0]) * 1e-3
    cpu = float(text.split("CPU ")[1].split(" ms/step")[0]) * 1e-3
    rss = [x for x in r.stdout.splitlines() if "peak RSS" in x]
    peak_rss = float(rss[0].split("peak RSS ")[1].split(" GB")[0]) * 1e9 if rss else 0.0
    return {"seconds": med, "cpu_seconds": cpu, "peak_rss_bytes": peak_rss}


def gb(n):
    return "%.2f GB" % (n / 1e9)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=None, help="path of bench_train_step (default: the newest build*/**/bench/bench_train_step)")
    ap.add_argument("--mode", nargs="+", default=["train"], choices=["train", "encode"])
    ap.add_argument("--batch", nargs="+", type=int, default=[8], help="train-step batches, any of 8 16 32 (default 8)")
    ap.add_argument("--encode-batch", nargs="+", type=int, default=[32], help="encode batches (32)")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--reps", type=int, default=3, help="processes per side and configuration (median reported)")
    ap.add_argument("--torch-steps", type=int, default=3, help="timed steps per PyTorch process (median)")
    ap.add_argument("--variants", nargs="+", default=["gathered"], choices=["gathered", "public"])
    ap.add_argument("--yardstick", default=None,
                    help="an outside PyTorch script with cpc_torch.py's command line, run side by side "
                         "(--loss fused --obauto) for reference")
    ap.add_argument("--cpc-bf16", action="store_true",
                    help="also run cpc with the convolutions' products in bf16 (cpc::matmul_precision::bf16, "
                         "Intel AMX; side cpc-bf16; its 'of peak' is over the fp32 FMA peak)")
    ap.add_argument("--keep-coretype", action="store_true",
                    help="PyTorch: keep the environment's OPENBLAS_CORETYPE (default: OpenBLAS detects the CPU)")
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
              "  cmake --preset bench && cmake --build --preset bench --target bench_train_step")
        return 1
    have_torch, why = torch_available()
    print("cpc:     %s (glibc malloc + cpc::configure_allocator)" % bench)
    if have_torch:
        print("PyTorch: %s %s via bench/pytorch_reference.py (jemalloc without page decay, OpenBLAS, "
              "OPENBLAS_CORETYPE %s); variants: %s%s" % (
                  TORCH_PYTHON, why, "kept" if a.keep_coretype else "removed", ", ".join(a.variants),
                  "; yardstick: " + a.yardstick if a.yardstick else ""))
    else:
        print("PyTorch: skipped - %s. Install Debian's python3-torch to compare; showing cpc only." % why)
    if a.autogroup_nice is not None:
        print("each timed process runs in an autogroup of its own, nice %d" % a.autogroup_nice)
    print("load average before: %s" % loadavg())

    results = {}  # (mode, batch, threads, side) -> list of runs
    skipped = {}
    configs = [(m, b, t) for m in a.mode for b in (a.batch if m == "train" else a.encode_batch) for t in a.threads]
    sides_of = {}
    for rep in range(a.reps):
        for (m, b, t) in configs:
            sides = ["cpc"] + (["cpc-bf16"] if a.cpc_bf16 else [])
            if have_torch:
                sides += ["pytorch-" + v for v in a.variants if not (m == "encode" and v == "public")]
                if a.yardstick:
                    sides.append("yardstick")
            sides_of[(m, b, t)] = sides
            for side in sides:
                key = (m, b, t, side)
                if side == "pytorch-public" and m == "train" and b * PUBLIC_BYTES_PER_ITEM > 0.7 * mem_available():
                    skipped[key] = "needs ~%s, %s available" % (gb(b * PUBLIC_BYTES_PER_ITEM), gb(mem_available()))
                    continue
                if side.startswith("cpc"):
                    r = run_cpc(bench, m, b, t, bf16=side == "cpc-bf16")
                elif side == "yardstick":
                    r = run_yardstick(a.yardstick, m, b, t, a.torch_steps)
                else:
                    r = run_torch(side.split("-")[1], m, b, t, a.torch_steps, a.keep_coretype)
                results.setdefault(key, []).append(r)
                print("  rep %d %-6s batch %2d threads %d %-17s %s   (load %s)" % (
                    rep + 1, m, b, t, side,
                    r.get("error") or "%.3f s (cpu %.3f s)" % (r["seconds"], r["cpu_seconds"]), loadavg()), flush=True)
    print("load average after: %s" % loadavg())

    print()
    print("FMA peak: measured in each cpc process (support/peak.hpp), per CPU second, for the thread count; "
          "\"of peak\" = GFLOP/s / that peak (medians over repetitions).")
    print("| mode | batch | threads | side | wall s/step | CPU s/step | peak RSS | GFLOP/s | of peak | "
          "cpc / fastest PyTorch (wall) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (m, b, t) in configs:
        base = results.get((m, b, t, "cpc"))
        cw = statistics.median(x["seconds"] for x in base)
        peak = statistics.median(x["peak"] for x in base)
        gflop = statistics.median(x["gflops"] * x["seconds"] for x in base)
        variants = [s for s in sides_of[(m, b, t)] if s.startswith("pytorch-")]
        medians = {}
        for side in sides_of[(m, b, t)]:
            runs = [x for x in results.get((m, b, t, side), []) if "error" not in x]
            if runs:
                medians[side] = statistics.median(x["seconds"] for x in runs)
        fastest = min((medians[s], s) for s in variants if s in medians) if any(s in medians for s in variants) else None
        for side in sides_of[(m, b, t)]:
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
            w = medians[side]
            c = statistics.median(x["cpu_seconds"] for x in runs)
            rss = max(x["peak_rss_bytes"] for x in runs)
            gf = gflop / w
            ratio = ""
            if side.startswith("cpc") and fastest:
                ratio = "%.2f (vs %s, %.3f s)" % (w / fastest[0], fastest[1], fastest[0])
            elif not side.startswith("cpc"):
                ratio = "%.2f" % (cw / w)
            print("| %s | %d | %d | %s | %.3f | %.3f | %s | %.1f | %.2f | %s |" % (
                m, b, t, side, w, c, gb(rss), gf, gf / peak if peak else float("nan"), ratio))
    if not have_torch:
        print("\nPyTorch side skipped: %s." % why)
    return 0


if __name__ == "__main__":
    sys.exit(main())
