#!/usr/bin/env python3
"""mixed.py -- the mixed profile: IP-auth calls, digest calls and digest registrations at once.

  mixed.py --out OUT --peer PEERCOPY --users users.csv --name sipward --target 127.0.0.1:5080 --cmd "..."
  mixed.py --out OUT --peer PEERCOPY --users users.csv --name kamailio --kamailio 127.0.0.1:5070

A step at rate R runs three SIPp UACs side by side for DURATION seconds against one target,
with the peer harness's scenarios, sources and upstream UAS:
  ipauth  50 % of R   uac_ipauth.xml  from 127.0.0.2:15062 (IP endpoint / address row)
  digest  25 % of R   uac_digest.xml  from 127.0.0.3:15063 (407 round trip)
  reg     25 % of R   reg_digest.xml  from 127.0.0.3:15064 (401 round trip, distinct users)
A step passes when EACH of the three passes the harness rule (>= MIN_SUCCESS_PCT % of its calls
succeed and it achieves >= MIN_RATE_PCT % of its rate). The search is the harness's: a rate
ladder, bisection (REFINE steps, RATE_STEP granularity) and a repeat of the top rate (a failed
repeat falls back to the next lower passing rate). Rows are appended to OUT/steps.tsv in the
harness's format (scenario "mixed"), so that analyze.py and report.py read them as well.

sipward (--cmd) is started once for the whole search, as run.sh does for external targets;
Kamailio is restarted before every step, as run.sh does. Every process started here is stopped
by PID; every SIPp run is bounded by -m, -timeout and a hard deadline.
"""
import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
import time

SHARES = (("ipauth", 0.50), ("digest", 0.25), ("reg", 0.25))
XML = {"ipauth": "uac_ipauth.xml", "digest": "uac_digest.xml", "reg": "reg_digest.xml"}
SRC = {"ipauth": ("127.0.0.2", 15062), "digest": ("127.0.0.3", 15063), "reg": ("127.0.0.3", 15064)}

ap = argparse.ArgumentParser()
ap.add_argument("--out", required=True)
ap.add_argument("--peer", required=True)
ap.add_argument("--users", required=True)
ap.add_argument("--name", required=True)
ap.add_argument("--target")
ap.add_argument("--cmd")
ap.add_argument("--kamailio")
ap.add_argument("--uas-port", type=int, default=5090)
ap.add_argument("--rates", default="500 1000 2000 4000 8000 16000")
ap.add_argument("--fixed", type=int, default=1000)
ap.add_argument("--duration", type=int, default=int(os.environ.get("DURATION", "10")))
ap.add_argument("--hold-ms", type=int, default=int(os.environ.get("HOLD_MS", "1000")))
ap.add_argument("--refine", type=int, default=int(os.environ.get("REFINE", "3")))
ap.add_argument("--repeat", type=int, default=int(os.environ.get("REPEAT", "1")))
ap.add_argument("--rate-step", type=int, default=int(os.environ.get("RATE_STEP", "50")))
A = ap.parse_args()

sys.path.insert(0, os.path.join(A.peer, "lib"))
import analyze  # noqa: E402  (the peer harness's analysis: read_stat, read_rtt, pct, cpu_attribution)

MIN_SUCC = float(os.environ.get("MIN_SUCCESS_PCT", "99.9"))
MIN_RATE = float(os.environ.get("MIN_RATE_PCT", "95"))
QUIET_MAX, QUIET_WAIT = float(os.environ.get("QUIET_MAX", "25")), float(os.environ.get("QUIET_WAIT", "300"))
STEPS_TSV = os.path.join(A.out, "steps.tsv")
SIPP = os.path.join(A.peer, "sipp")
TARGET = A.kamailio or A.target
for a in (TARGET, "127.0.0.1:%d" % A.uas_port):
    if not re.match(r"^127\.\d{1,3}\.\d{1,3}\.\d{1,3}:\d+$", a or ""):
        sys.exit("mixed.py: only loopback host:port targets are allowed: %r" % a)
OURS = {}  # pid -> Popen


def log(msg):
    line = "%s mixed[%s]: %s" % (time.strftime("%H:%M:%S"), A.name, msg)
    print(line, file=sys.stderr, flush=True)
    with open(os.path.join(A.out, "run.log"), "a") as f:
        f.write(line + "\n")


def start(args, cwd, logname, **kw):
    f = open(os.path.join(cwd, logname), "ab")
    p = subprocess.Popen(args, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw)
    OURS[p.pid] = p
    return p


def stop(p, wait_s=5):
    if p is None or p.pid not in OURS:
        return
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(wait_s)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    OURS.pop(p.pid, None)


def cleanup(*_):
    for p in list(OURS.values()):
        stop(p, 3)
    sys.exit(130)


signal.signal(signal.SIGTERM, cleanup)
signal.signal(signal.SIGINT, cleanup)


def udp_bound(addr):
    out = subprocess.run(["ss", "-H", "-uln"], capture_output=True, text=True).stdout
    port = addr.rsplit(":", 1)[1]
    return any(c.split()[3] in (addr, "0.0.0.0:" + port, "*:" + port) for c in out.splitlines() if len(c.split()) > 3)


def wait_udp(addr, secs):
    end = time.time() + secs
    while time.time() < end:
        if udp_bound(addr):
            return True
        time.sleep(0.1)
    return False


def sys_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v), v[3] + v[4]


def busy_pct():
    a = sys_ticks()
    time.sleep(1)
    b = sys_ticks()
    tot, idle = b[0] - a[0], b[1] - a[1]
    return 100.0 * os.cpu_count() * (tot - idle) / tot if tot else 0.0


def wait_quiet():
    t0 = time.time()
    while True:
        b = busy_pct()
        if b <= QUIET_MAX:
            return 1
        if time.time() - t0 >= QUIET_WAIT:
            log("machine still busy (%.0f%% of a core); running anyway (flagged)" % b)
            return 0
        log("waiting for a quiet machine: %.0f%% of a core busy" % b)
        time.sleep(4)


# ------------------------------------------------------------------ targets
KAM = None


def start_target(logdir):
    global KAM
    if A.kamailio:
        host, port = A.kamailio.rsplit(":", 1)
        if udp_bound(A.kamailio):
            sys.exit("mixed.py: %s is in use by another process" % A.kamailio)
        run = os.path.join(A.out, "kamrun-mixed")
        os.makedirs(run, exist_ok=True)
        args = ["kamailio", "-f", os.path.join(A.peer, "kamailio", "kamailio.cfg"), "-DD", "-E",
                "-m", os.environ.get("KAM_SHM", "1024"), "-M", os.environ.get("KAM_PKG", "16"),
                "-Y", run, "-P", os.path.join(run, "kamailio.pid"),
                "-A", "LISTEN_UDP=udp:%s:%s" % (host, port), "-A", "LISTEN_TCP=tcp:%s:%s" % (host, port),
                "-A", 'UPSTREAM="sip:127.0.0.1:%d"' % A.uas_port, "-A", 'CTLSOCK="unix:%s/ctl.sock"' % run,
                "-A", 'DBURL="sqlite://%s"' % os.path.join(A.peer, "kamailio", "kamailio.sqlite")]
        mem = os.environ.get("KAM_MEM", "tlsf")
        if mem:
            args += ["-x", mem, "-X", mem]
        KAM = start(args, logdir, "kamailio.log")
        if not wait_udp(A.kamailio, 15):
            sys.exit("mixed.py: kamailio did not start (see %s/kamailio.log)" % logdir)
        time.sleep(0.5)
        return KAM
    if udp_bound(A.target):
        sys.exit("mixed.py: %s is in use by another process" % A.target)
    p = start(shlex.split(A.cmd), A.out, A.name + "-mixed.log")
    if not wait_udp(A.target, 20):
        sys.exit("mixed.py: %s did not bind %s" % (A.name, A.target))
    time.sleep(0.5)
    return p


def stop_target(p):
    stop(p, 10)
    for _ in range(50):
        if not udp_bound(TARGET):
            break
        time.sleep(0.1)


# ------------------------------------------------------------------ one step
STEP_FIELDS = analyze.STEP_FIELDS
STEP_NO = [len([d for d in os.listdir(os.path.join(A.out, "steps"))]) if os.path.isdir(os.path.join(A.out, "steps")) else 0]
SERVER = None


def run_step(rate, kind):
    global SERVER
    STEP_NO[0] += 1
    d = os.path.join(A.out, "steps", "%03d-%s-proxy-mixed-%d-%s" % (STEP_NO[0], A.name, rate, kind))
    os.makedirs(d, exist_ok=True)
    quiet = wait_quiet()
    if A.kamailio:
        stop_target(SERVER)
        SERVER = start_target(d)
    elif SERVER is None or SERVER.poll() is not None:
        SERVER = start_target(A.out)
    tmo = A.duration * 3 + A.hold_ms // 1000 + 20
    if udp_bound("127.0.0.1:%d" % A.uas_port):
        sys.exit("mixed.py: UAS port %d is in use by another process" % A.uas_port)
    uas = start(["sipp", "-sf", os.path.join(SIPP, "uas.xml"), "-i", "127.0.0.1", "-p", str(A.uas_port),
                 "-bind_local", "-t", "u1", "-nostdin", "-buff_size", "4194304",
                 "-timeout", "%ds" % (A.duration * 4 + 60), "-trace_err", "-error_file", os.path.join(d, "uas_err.log"),
                 "-max_log_size", "2000000"], d, "uas.out")
    if not wait_udp("127.0.0.1:%d" % A.uas_port, 10):
        sys.exit("mixed.py: sipp UAS did not start")
    uacs, want = {}, {}
    for scn, share in SHARES:
        r = max(1, int(round(rate * share)))
        n = r * A.duration
        want[scn] = (r, n)
        sd = os.path.join(d, scn)
        os.makedirs(sd, exist_ok=True)
        src, port = SRC[scn]
        args = ["sipp", TARGET, "-sf", os.path.join(SIPP, XML[scn]), "-i", src, "-p", str(port), "-bind_local",
                "-t", "u1", "-s", "1000", "-d", str(A.hold_ms), "-r", str(r), "-rp", "1000", "-m", str(n),
                "-nostdin", "-buff_size", "4194304", "-recv_timeout", "8000", "-timeout", "%ds" % tmo,
                "-trace_stat", "-stf", os.path.join(sd, "stat.csv"), "-fd", "1", "-trace_err",
                "-error_file", os.path.join(sd, "err.log"), "-max_log_size", "2000000",
                "-trace_rtt", "-rtt_freq", "1"]
        if scn != "ipauth":
            args += ["-inf", A.users]
        if scn == "digest":
            args += ["-auth_uri", "1000@" + TARGET]
        uacs[scn] = start(args, sd, "uac.out")
    roots = [str(KAM.pid)] if A.kamailio else [str(SERVER.pid)]
    with open(os.path.join(d, "pids.txt"), "w") as f:
        f.write("target %s\nuas %d\nuac %s\nharness %d\n" % (" ".join(roots), uas.pid,
                                                           " ".join(str(p.pid) for p in uacs.values()), os.getpid()))
    with open(os.path.join(d, "addrs.txt"), "w") as f:
        f.write("target %s\nuas 127.0.0.1:%d\n" % (TARGET, A.uas_port))
    warm, win = 2, A.duration - 3
    if win < 1:
        warm, win = 1, max(1, A.duration - 1)
    snap = os.path.join(A.peer, "lib", "cpusnap.py")
    time.sleep(warm)
    subprocess.run([sys.executable, snap, os.path.join(d, "cpuA.json")])
    time.sleep(win)
    subprocess.run([sys.executable, snap, os.path.join(d, "cpuB.json")])
    deadline = time.time() + tmo + 15
    for p in uacs.values():
        try:
            p.wait(max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            log("UAC exceeded its deadline, stopping it")
        stop(p, 3)
    stop(uas, 3)

    # per-UAC figures, pooled setup times
    tot = {"created": 0, "success": 0, "failed": 0, "retrans": 0, "n": 0}
    r1all, r2all, achieved, ok, parts = [], [], 0.0, True, []
    for scn, _ in SHARES:
        sd = os.path.join(d, scn)
        for fn in os.listdir(sd):
            if fn.endswith("_rtt.csv"):
                os.replace(os.path.join(sd, fn), os.path.join(sd, "rtt.csv"))
        st = analyze.read_stat(os.path.join(sd, "stat.csv"))
        succ = analyze.to_int(st.get("SuccessfulCall(C)", 0))
        tot["created"] += analyze.to_int(st.get("OutgoingCall(C)", 0))
        tot["success"] += succ
        tot["failed"] += analyze.to_int(st.get("FailedCall(C)", 0))
        tot["retrans"] += analyze.to_int(st.get("Retransmissions(C)", 0))
        r, n = want[scn]
        tot["n"] += n
        rtt = analyze.read_rtt(os.path.join(sd, "rtt.csv"))
        r1 = rtt.get("1", [])
        ach = 0.0
        if len(r1) >= 2:
            ts = sorted(x[0] for x in r1)
            span = (ts[-1] - ts[0]) / 1000.0
            ach = (len(ts) - 1) / span if span > 0 else 0.0
        achieved += ach
        r1all += [x[1] for x in r1]
        r2all += [x[1] for x in rtt.get("2", [])]
        pass_ = 100.0 * succ / n >= MIN_SUCC and ach >= r * MIN_RATE / 100.0
        ok = ok and pass_
        parts.append("%s %d/%d %.0f/s %s" % (scn, succ, n, ach, "ok" if pass_ else "FAIL"))
        subprocess.run(["gzip", "-f", os.path.join(sd, "rtt.csv")], stderr=subprocess.DEVNULL)
    v1, v2 = sorted(r1all), sorted(r2all)
    c = analyze.cpu_attribution(d)
    f = analyze.fmt
    vals = [str(tot["created"]), str(tot["success"]), str(tot["failed"]), str(tot["retrans"]),
            f(100.0 * tot["success"] / tot["n"], 3), f(achieved, 1),
            f(sum(v1) / len(v1) if v1 else float("nan"), 2), f(analyze.pct(v1, 50), 0), f(analyze.pct(v1, 95), 0),
            f(analyze.pct(v1, 99), 0), f(v1[-1] if v1 else float("nan"), 0), f(analyze.pct(v2, 50), 0),
            f(analyze.pct(v2, 99), 0), f(c["target"], 1), f(c["uac"], 1), f(c["uas"], 1), f(c["sys_busy"], 1),
            f(c["other"], 1), f(c["kern"], 1), f(c["other"] - c["kern"], 1), c["foreign_top"], c["udp_drops"], "-",
            "1" if ok else "0"]
    assert len(vals) == len(STEP_FIELDS)
    if not os.path.exists(STEPS_TSV) or os.path.getsize(STEPS_TSV) == 0:
        with open(STEPS_TSV, "w") as fh:
            fh.write("target\tmode\tscenario\tkind\trate\tn\t%s\tquiet\tdir\n" % "\t".join(STEP_FIELDS))
    with open(STEPS_TSV, "a") as fh:
        fh.write("\t".join([A.name, "proxy", "mixed", kind, str(rate), str(tot["n"])] + vals +
                           [str(quiet), os.path.basename(d)]) + "\n")
    log("r=%-5d %-7s %s | %s | setup p50=%sms p99=%sms | cpu%% target=%s uac=%s foreign=%s" % (
        rate, kind, "PASS" if ok else "FAIL", "; ".join(parts), f(analyze.pct(v1, 50), 0),
        f(analyze.pct(v1, 99), 0), f(c["target"], 1), f(c["uac"], 1), f(c["other"] - c["kern"], 1)))
    return ok


def search():
    lo = hi = 0
    passed = set()
    for r in [int(x) for x in A.rates.split()]:
        if run_step(r, "ladder"):
            lo = r
            passed.add(r)
        else:
            hi = r
            break
    if lo and hi:
        for _ in range(A.refine):
            mid = (lo + hi) // 2 // A.rate_step * A.rate_step
            if mid <= lo or mid >= hi:
                break
            if run_step(mid, "refine"):
                lo = mid
                passed.add(mid)
            else:
                hi = mid
    for _ in range(3):
        if not lo:
            break
        if all(run_step(lo, "repeat") for _ in range(A.repeat)):
            break
        hi = lo
        below = sorted(x for x in passed if x < lo)
        log("repeat at %d failed: falling back to %s/s" % (lo, below[-1] if below else 0))
        lo = below[-1] if below else 0
    if A.fixed and A.fixed not in [int(x) for x in A.rates.split()]:
        run_step(A.fixed, "fixed")
    log("max sustained rate %d/s (first failing rate: %s)" % (lo, hi or "none"))


try:
    log("start: target %s, rates %s, %d s per step" % (TARGET, A.rates, A.duration))
    search()
finally:
    stop_target(SERVER)
    for p in list(OURS.values()):
        stop(p, 3)
