#!/usr/bin/env python3
"""report.py -- the bench's summary: per scenario, sipward vs Kamailio, from one OUT/steps.tsv.

  report.py report OUT [--md]           the table (and the peer harness's own summary below it);
                                        --md: the two tables only, in Markdown
  report.py half STEPS_TSV TARGET SCN   half of TARGET's highest passing rate for SCN, to RATE_STEP

Per scenario and target:
  max/s      highest rate at which every run passed (the harness rule: >= 99.9 % of the calls
             succeed and >= 95 % of the rate achieved; a failed run re-run because of foreign load
             or a machine stall does not count) -- from the search steps
  best run/s highest rate that passed at least once (the noise at the edge)
  p50/p99    call setup time (SIPp RTD 1: first INVITE/REGISTER sent -> final 200, including
             the 407/401 round trip) at that rate, ms, worst of the runs there
  cpu        the target's on-CPU seconds per 1,000 calls (registrations for reg) at the fixed
             rate FIXED_RATE (steps of "<name>-fixed"; for mixed: the search step at that rate);
             with several rounds of fixed steps (FIXED_ROUNDS), the median of the rounds
  p99@half   p99 setup time at half of Kamailio's highest rate (steps of "<name>-fixed"), over
             the setups of every round pooled; slow@half: the pooled share of setups of 8 ms or
             more (two SIPp ticks: above 1 %, p99 is a tick higher)
ratio = sipward / Kamailio (max: higher is better; cpu and p99: lower is better). With rounds, the
ratios table also gives the CPU ratio of each round (round i's sipward step over round i's
Kamailio step, which ran just before it): on a shared machine one step can be off by 20 %.
With a target "sipward-base" (bench/run.sh's BASE_REV: an older build run beside sipward), its rows
come with the others' and two more ratio tables follow: sipward-base / Kamailio, and sipward /
sipward-base (the regression check; each round: round i's sipward step over round i's sipward-base
step), with the CPU of every round of the three targets in the order they ran.
"""
import gzip
import csv
import math
import os
import subprocess
import sys

SCENARIOS = ("ipauth", "digest", "reg", "mixed")


def f(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def load(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as fh:
        return [r for r in csv.DictReader(fh, delimiter="\t") if r.get("mode") == "proxy"]


def superseded(r, rows):
    if r["pass"] == "1" or r["kind"].endswith("-rerun"):
        return False
    disturbed = f(r.get("foreign_cpu")) > float(os.environ.get("FOREIGN_MAX", "25")) or \
        f(r.get("stall_max_ms")) > float(os.environ.get("STALL_MAX_MS", "300"))
    return disturbed and any(x["kind"] == r["kind"] + "-rerun" and x["rate"] == r["rate"] for x in rows)


def search_rows(rows, target, scn):
    g = [r for r in rows if r["target"] == target and r["scenario"] == scn and r["kind"] != "fixed"]
    return [r for r in g if not superseded(r, g)]


def max_rate(rows, target, scn):
    by = {}
    for r in search_rows(rows, target, scn):
        by.setdefault(int(f(r["rate"])), []).append(r)
    stable = [rt for rt, rs in by.items() if all(x["pass"] == "1" for x in rs)]
    best = max(stable) if stable else 0
    return best, by.get(best, [])


def best_single(rows, target, scn):
    """highest rate that passed at least once (shows the noise at the edge)"""
    ok = [int(f(r["rate"])) for r in search_rows(rows, target, scn) if r["pass"] == "1"]
    return max(ok) if ok else 0


def at_rate(rows, targets, scn, rate):
    return [r for r in rows if r["target"] in targets and r["scenario"] == scn and int(f(r["rate"])) == rate
            and r["pass"] == "1"]


def cpu_rounds(rs, rate):
    """per-row CPU seconds per 1,000 calls, in the order the rows ran"""
    return [f(r["target_cpu"]) / 100.0 / rate * 1000.0 for r in rs if not math.isnan(f(r["target_cpu"]))]


def median(vs):
    vs = sorted(v for v in vs if not math.isnan(v))
    if not vs:
        return float("nan")
    m = len(vs) // 2
    return vs[m] if len(vs) % 2 else (vs[m - 1] + vs[m]) / 2.0


def pooled_setups(out, rs):
    """every RTD 1 setup time (ms) of the steps rs, from their rtt.csv(.gz) (a mixed step: its flows'
    subdirectories'); None if one is missing"""
    vals = []
    for r in rs:
        d = os.path.join(out, "steps", r.get("dir", ""))
        dirs = [d] if os.path.exists(os.path.join(d, "rtt.csv")) or os.path.exists(os.path.join(d, "rtt.csv.gz")) \
            else [os.path.join(d, x) for x in ("ipauth", "digest", "reg")]
        for sd in dirs:
            path = os.path.join(sd, "rtt.csv")
            if not os.path.exists(path):
                path += ".gz"
            if not r.get("dir") or not os.path.exists(path):
                return None
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt") as fh:
                for line in fh:
                    p = line.strip().split(";")
                    if len(p) >= 3 and p[2] == "1":
                        try:
                            vals.append(float(p[1]))
                        except ValueError:
                            pass
    return sorted(vals)


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(math.ceil(p / 100.0 * len(sorted_vals))) - 1))
    return sorted_vals[k]


def half(path, target, scn):
    step = int(os.environ.get("RATE_STEP", "50"))
    best, _ = max_rate(load(path), target, scn)
    return int(round(best / 2.0 / step)) * step


def fmt(v, nd=0):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else ("%." + str(nd) + "f") % v


def ratio(a, b):
    if a is None or b is None:
        return "-"
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return "-"
    return "%.2f" % (a / b)


def report(out, md=False):
    rows = load(os.path.join(out, "steps.tsv"))
    fixed = 1000
    quick = False
    mt = os.path.join(out, "machine.txt")
    if os.path.exists(mt):
        for line in open(mt):
            for tok in line.split():
                if tok.startswith("FIXED_RATE="):
                    fixed = int(tok.split("=", 1)[1])
                if tok == "QUICK=1":
                    quick = True
        if not md:
            print("".join(l for l in open(mt) if not l.startswith("sipward:")), end="")
    targets = [t for t in ("sipward", "sipward-base", "kamailio") if any(r["target"] == t for r in rows)]
    if not md:
        print()
        print("sipward benchmark%s -- %s" % (" (QUICK run: smoke figures, not for comparison)" if quick else "", out))
        print()
    hdr = ["scenario", "target", "max/s", "best run/s", "setup p50/p99 ms @max", "cpu s/1000 @%d/s" % fixed,
           "rounds", "half-rate", "p99 ms @half", "slow@half"]
    body, ratios, base_k, new_base = [], [], [], []
    nrounds = 1
    for scn in SCENARIOS:
        kmax = max_rate(rows, "kamailio", scn)[0] if "kamailio" in targets else 0
        hrate = int(round(kmax / 2.0 / 50)) * 50 if kmax else 0
        res = {}
        for t in targets:
            best, at = max_rate(rows, t, scn)
            if not search_rows(rows, t, scn):
                continue
            p50 = max((f(r["rtd1_p50"]) for r in at), default=float("nan"))
            p99 = max((f(r["rtd1_p99"]) for r in at), default=float("nan"))
            names = (t + "-fixed",) if scn != "mixed" else (t,)
            rounds = cpu_rounds(at_rate(rows, names, scn, fixed), fixed)
            if not rounds and scn != "mixed":  # no fixed-rate step: the search step at that rate
                rounds = cpu_rounds(at_rate(rows, (t,), scn, fixed), fixed)
            cpu = median(rounds)
            nrounds = max(nrounds, len(rounds))
            hp99, slow = float("nan"), float("nan")
            if hrate:
                # the dedicated steps at that rate; the search's own step there if there is none
                hs = at_rate(rows, (t + "-fixed",), scn, hrate) or at_rate(rows, (t,), scn, hrate)
                setups = pooled_setups(out, hs)
                if setups:
                    hp99 = pct(setups, 99)
                    slow = 100.0 * sum(1 for v in setups if v >= 8) / len(setups)
                else:
                    hp99 = max((f(r["rtd1_p99"]) for r in hs), default=float("nan"))
                if not hs and any(r["target"] in (t, t + "-fixed") and r["scenario"] == scn and
                                  int(f(r["rate"])) == hrate for r in rows):
                    hp99 = None  # run there, never passed
            res[t] = (best, p50, p99, cpu, hp99, rounds)
            body.append([scn, t, str(best) if best else "<lowest", str(best_single(rows, t, scn)),
                         "%s/%s" % (fmt(p50), fmt(p99)), fmt(cpu, 3), str(len(rounds)),
                         str(hrate) if hrate else "-", "fails" if hp99 is None else fmt(hp99),
                         "-" if math.isnan(slow) else "%.2f %%" % slow])
        if "sipward" in res and "kamailio" in res:
            s, k = res["sipward"], res["kamailio"]
            each = " ".join(ratio(a, b) for a, b in zip(s[5], k[5])) if len(s[5]) > 1 else "-"
            ratios.append([scn, ratio(s[0], k[0]), ratio(s[3], k[3]), each, ratio(s[4], k[4])])
        if "sipward-base" in res:
            b = res["sipward-base"]
            if "kamailio" in res:
                k = res["kamailio"]
                each = " ".join(ratio(x, y) for x, y in zip(b[5], k[5])) if len(b[5]) > 1 else "-"
                base_k.append([scn, ratio(b[0], k[0]), ratio(b[3], k[3]), each, ratio(b[4], k[4])])
            if "sipward" in res:
                s = res["sipward"]
                each = " ".join(ratio(x, y) for x, y in zip(s[5], b[5])) if len(s[5]) > 1 else "-"
                rounds = "; ".join("%s %s" % (t, " ".join(fmt(v, 3) for v in res[t][5]) or "-")
                                    for t in ("kamailio", "sipward-base", "sipward") if t in res)
                new_base.append([scn, ratio(s[0], b[0]), ratio(s[3], b[3]), each, ratio(s[4], b[4]), rounds])

    def emit(h, b):
        if md:
            print("| " + " | ".join(h) + " |")
            print("|" + "---|" * len(h))
            for r in b:
                print("| " + " | ".join(r) + " |")
            return
        w = [max([len(c)] + [len(r[i]) for r in b]) for i, c in enumerate(h)]
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(h)))
        for r in b:
            print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))

    rhdr = ["scenario", "max rate", "cpu per call", "cpu, each round", "p99 @half"]
    nbhdr = rhdr + ["cpu s/1000 @%d/s, round by round" % fixed]
    emit(hdr, body)
    if md:
        print()
        emit(rhdr, ratios)
        for b, h, title in ((base_k, rhdr, "sipward-base / Kamailio"), (new_base, nbhdr, "sipward / sipward-base")):
            if b:
                print()
                print(title + ":")
                print()
                emit(h, b)
        return
    if ratios:
        print()
        print("sipward / Kamailio (max: >= 1 is better; cpu and p99: <= 1 is better):")
        print()
        emit(rhdr, ratios)
    if base_k:
        print()
        print("sipward-base / Kamailio (the same ratios for the older build):")
        print()
        emit(rhdr, base_k)
    if new_base:
        print()
        print("sipward / sipward-base, new over old (max: >= 1 is better; cpu and p99: <= 1 is better):")
        print()
        emit(nbhdr, new_base)
    print()
    print("max = highest rate at which every run passed (>= 99.9 % success, >= 95 % of the rate);"
          " setup = SIPp RTD 1 (4 ms granularity);")
    print("cpu = on-CPU time of the server's process tree (schedstat) over the steady part of a step,"
          " per 1,000 calls; mixed = 50 % ipauth + 25 % digest + 25 % reg.")
    rep = os.path.join(out, "peer", "lib", "analyze.py")
    if os.path.exists(rep) and rows:
        print()
        print("== every target and scenario (the peer harness's summary) ==")
        sys.stdout.flush()
        subprocess.run([sys.executable, rep, "report", os.path.join(out, "steps.tsv")])


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) in (2, 3) and a[0] == "report":
        report(a[1], md="--md" in a)
    elif len(a) == 4 and a[0] == "half":
        print(half(a[1], a[2], a[3]))
    else:
        sys.exit(__doc__)
