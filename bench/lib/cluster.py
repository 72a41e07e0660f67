#!/usr/bin/env python3
"""cluster.py -- the helpers of bench/cluster.sh (make bench CLUSTER=N).

  cluster.py provision BASE_URL TOKEN CHANNELS CPS   account "acme" with IP endpoint 127.0.0.2/32;
                                                     prints the endpoint's id
  cluster.py limit BASE_URL TOKEN ENDPOINT_ID CHANNELS   PATCH the endpoint's channel limit
  cluster.py ready TIMEOUT_S BASE_URL...             wait until every node's snapshot has caught up
                                                     with the store (GET /healthz); exit 1 if not
  cluster.py health BASE_URL...                      "ok" or what /healthz of each node says is wrong
  cluster.py redis REDIS_HOST REDIS_PORT             one line "cmds scripts": INFO's
                                                     total_commands_processed (which counts the
                                                     commands run inside Lua scripts too) and the
                                                     calls of EVALSHA + EVAL (round trips of scripts)
  cluster.py sipp DIR                                one line "created passed failed answered p50_ms
                                                     p99_ms" from the SIPp UAC's stat.csv and *_rtt.csv
                                                     in DIR (answered: calls with a setup time, RTD 1)
  cluster.py poll OUT_TSV STOP_FILE TOKEN BASE_URL...  every 200 ms until STOP_FILE exists: the
                                                     calls up in the cluster (node 1's merged GET /api/v1/calls, by node),
                                                     their sum, and the endpoint channels in use that
                                                     node 1 reports (sipward_limits_channels_in_use,
                                                     cluster-wide with Redis); prints the maxima
  cluster.py fallbacks STEP_DIR                      how many warnings of the step's sipward logs
                                                     (STEP_DIR/db/node*.log) say Redis did not answer
  cluster.py report OUT                              the plain-text report from OUT/steps.tsv,
                                                     OUT/limits.txt and OUT/machine.txt

Only the standard library: the bench runs where sipward's own build does.
"""
import json
import math
import os
import re
import socket
import statistics
import sys
import time
import urllib.error
import urllib.request


def http(method, url, token=None, body=None, timeout=5):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def provision(base, token, channels, cps):
    # Account channels as run.sh's provisioning sets them: the Acquire script then takes a
    # channel of the endpoint and one of the account, as a real customer's call does.
    body = {"name": "acme", "channels": 1000000,
            "ip_endpoints": [{"address": "127.0.0.2", "channels": int(channels), "cps": int(cps)}]}
    st, raw = http("POST", base + "/api/v1/accounts", token, body, timeout=60)
    if st != 201:
        sys.exit("cluster.py provision: POST /api/v1/accounts: %d %s" % (st, raw[:500].decode(errors="replace")))
    eps = json.loads(raw).get("ip_endpoints") or []
    if len(eps) != 1:
        sys.exit("cluster.py provision: the account came back with %d IP endpoints, want 1" % len(eps))
    print(eps[0]["id"])


def limit(base, token, eid, channels):
    st, raw = http("PATCH", "%s/api/v1/ip-endpoints/%s" % (base, eid), token, {"channels": int(channels)})
    if st != 200:
        sys.exit("cluster.py limit: PATCH /api/v1/ip-endpoints/%s: %d %s" % (eid, st, raw[:500].decode(errors="replace")))


def healthz(base):
    try:
        st, raw = http("GET", base + "/healthz", timeout=3)
        return json.loads(raw) if st == 200 else {"status": "HTTP %d" % st}
    except (OSError, ValueError) as e:
        return {"status": "unreachable: %s" % e}


def ready(timeout, bases):
    deadline = time.time() + float(timeout)
    for b in bases:
        while True:
            h = healthz(b)
            if h.get("store_revision", 0) > 0 and h.get("snapshot_revision", 0) >= h["store_revision"]:
                break
            if time.time() > deadline:
                sys.exit("cluster.py ready: %s: snapshot not caught up after %s s: %s" % (b, timeout, h))
            time.sleep(0.05)


def health(bases):
    bad = []
    for b in bases:
        h = healthz(b)
        if h.get("status") != "ok":
            bad.append("%s: %s (redis: %s)" % (b, h.get("status"), h.get("redis", "-")))
    print("; ".join(bad) if bad else "ok")


def redis_cmd(host, port, *args):
    """One RESP command on a fresh connection; returns the reply's bulk string."""
    with socket.create_connection((host, int(port)), timeout=5) as s:
        req = "*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a), a) for a in args)
        s.sendall(req.encode())
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            if buf.startswith(b"$"):
                head, _, rest = buf.partition(b"\r\n")
                if len(rest) >= int(head[1:]) + 2:
                    break
            elif buf.endswith(b"\r\n"):
                break
    if not buf.startswith(b"$"):
        raise OSError("redis %s: %r" % (" ".join(args), buf[:200]))
    return buf.partition(b"\r\n")[2].decode()


def redis_counts(host, port):
    stats = redis_cmd(host, port, "INFO", "stats")
    m = re.search(r"^total_commands_processed:(\d+)", stats, re.M)
    cs = redis_cmd(host, port, "INFO", "commandstats")
    scripts = sum(int(x) for x in re.findall(r"^cmdstat_(?:evalsha|eval):calls=(\d+)", cs, re.M))
    print(m.group(1) if m else "-", scripts)


def pct(vals, p):
    if not vals:
        return float("nan")
    return vals[max(0, min(len(vals) - 1, int(math.ceil(p / 100.0 * len(vals))) - 1))]


def sipp_figures(d):
    """(created, passed, failed, setups) of the SIPp UAC that ran in d; setups are its calls'
    setup times (RTD 1), ms, sorted."""
    last = {}
    path = os.path.join(d, "stat.csv")
    if os.path.exists(path):
        rows = [r.rstrip("\n").split(";") for r in open(path) if r.strip()]
        if len(rows) >= 2:
            last = dict(zip(rows[0], rows[-1]))

    def num(k):
        try:
            return int(float(last.get(k, 0)))
        except ValueError:
            return 0
    setup = []
    for f in os.listdir(d):
        if f.endswith("_rtt.csv"):
            for line in open(os.path.join(d, f)):
                p = line.strip().split(";")
                if len(p) >= 3 and p[2] == "1":
                    try:
                        setup.append(float(p[1]))
                    except ValueError:
                        pass
    setup.sort()
    return num("OutgoingCall(C)"), num("SuccessfulCall(C)"), num("FailedCall(C)"), setup


def pcts(setup):
    """p50 and p99 of sorted setup times, as text."""
    return tuple("%.0f" % pct(setup, p) if setup else "-" for p in (50, 99))


def sipp(d):
    created, passed, failed, setup = sipp_figures(d)
    print(created, passed, failed, len(setup), *pcts(setup))


IN_USE = re.compile(r'^sipward_limits_channels_in_use\{kind="endpoint"\} (\S+)', re.M)


def poll(out, stop, token, bases):
    """Every 200 ms: the calls up in the cluster, from node 1's merged GET /api/v1/calls (each
    row names the node that carries it; a node that does not answer makes the sample -1), and
    node 1's cluster-wide endpoint holds (sipward_limits_channels_in_use, read from Redis)."""
    best_sum = best_gauge = samples = 0
    with open(out, "w") as f:
        f.write("t\t" + "\t".join("node%d" % (i + 1) for i in range(len(bases))) + "\tsum\tendpoint_in_use\n")
        t0 = time.time()
        ids = []  # node IDs in the order first seen
        while not os.path.exists(stop):
            s, per = -1, {}
            try:
                st, raw = http("GET", bases[0] + "/api/v1/calls", token, timeout=2)
                a = json.loads(raw) if st == 200 else {}
                if st == 200 and not a.get("missing_nodes"):
                    for c in a.get("items") or []:
                        per[c.get("node", "")] = per.get(c.get("node", ""), 0) + 1
                    s = len(a.get("items") or [])
            except (OSError, ValueError, KeyError):
                pass
            for n in sorted(per):
                if n not in ids:
                    ids.append(n)
            row = [per.get(n, 0) for n in ids] + [0] * (len(bases) - len(ids))
            gauge = -1
            try:
                st, raw = http("GET", bases[0] + "/metrics", timeout=2)
                m = IN_USE.search(raw.decode())
                gauge = int(float(m.group(1))) if m else -1
            except OSError:
                pass
            best_sum, best_gauge, samples = max(best_sum, s), max(best_gauge, gauge), samples + 1
            f.write("%.1f\t%s\t%d\t%d\n" % (time.time() - t0, "\t".join(map(str, row[:len(bases)])), s, gauge))
            f.flush()
            time.sleep(0.2)
    print(best_sum, best_gauge, samples)


def read_meta(d):
    meta = {}
    for line in open(os.path.join(d, "meta")):
        k, _, v = line.rstrip("\n").partition("=")
        meta[k] = v
    return meta


FALLBACK = re.compile(r"level=WARN .*(redis is down|cluster: )")


def fallbacks(d):
    """Warnings in the step's sipward logs that say Redis did not answer (an operation past its
    250 ms timeout marks Redis down: the node then counts channels and CPS on its own)."""
    n = 0
    ld = os.path.join(d, "db")
    for f in sorted(os.listdir(ld)) if os.path.isdir(ld) else []:
        if f.startswith("node") and f.endswith(".log"):
            n += sum(1 for line in open(os.path.join(ld, f), errors="replace") if FALLBACK.search(line))
    return n


def step_figures(d):
    """The figures of one load step (a directory with meta and uac1..uacN)."""
    m = read_meta(d)
    fb = fallbacks(d)
    if fb:
        m["health"] = "FELL BACK: %d Redis warnings" % fb
    tck = float(m.get("clk_tck", 100))
    nodes, pooled = [], []
    for i, ticks in enumerate(m["sw_ticks"].split()):
        u = os.path.join(d, "uac%d" % (i + 1))
        created, passed, failed, setup = (0, 0, 0, [])
        if os.path.isdir(u):
            created, passed, failed, setup = sipp_figures(u)
        pooled.extend(setup)
        p50, p99 = pcts(setup)
        cpu = int(ticks) / tck
        nodes.append({"node": i + 1, "created": created, "passed": passed, "failed": failed,
                      "p50": p50, "p99": p99, "cpu": cpu, "us": cpu / created * 1e6 if created else float("nan")})
    calls = sum(n["created"] for n in nodes)

    def per_call(key, scale):
        try:
            return float(m[key]) * scale / calls if calls else float("nan")
        except (KeyError, ValueError):
            return float("nan")
    pooled.sort()
    return {"meta": m, "nodes": nodes, "calls": calls, "setup": pcts(pooled), "fell_back": fb > 0,
            "passed": sum(n["passed"] for n in nodes), "failed": sum(n["failed"] for n in nodes),
            "sw_us": sum(n["cpu"] for n in nodes) / calls * 1e6 if calls else float("nan"),
            "redis_us": per_call("redis_ticks", 1e6 / tck), "cmds": per_call("redis_cmds", 1),
            "scripts": per_call("redis_scripts", 1)}


def f0(v):
    return "-" if isinstance(v, float) and math.isnan(v) else "%.0f" % v


def f1(v):
    return "-" if isinstance(v, float) and math.isnan(v) else "%.1f" % v


def f2(v):
    return "-" if isinstance(v, float) and math.isnan(v) else "%.2f" % v


def med(xs):
    xs = [x for x in xs if not (isinstance(x, float) and math.isnan(x))]
    return statistics.median(xs) if xs else float("nan")


ROW = "%-6s %-5s %-4s %7s %7s %6s %5s %5s %10s %10s %9s %8s  %s"
HEAD = ROW % ("round", "redis", "node", "calls", "passed", "failed", "p50", "p99",
              "sw_us/call", "rd_us/call", "cmds/call", "evals/c", "health")


def step_rows(s, per_node):
    m = s["meta"]
    rows = []
    if per_node and len(s["nodes"]) > 1:
        for n in s["nodes"]:
            rows.append(ROW % (m["round"], "on" if m["redis"] == "1" else "off", n["node"], n["created"], n["passed"],
                               n["failed"], n["p50"], n["p99"], f0(n["us"]), "", "", "", ""))
    rows.append(ROW % (m["round"], "on" if m["redis"] == "1" else "off", "all" if len(s["nodes"]) > 1 else "1",
                       s["calls"], s["passed"], s["failed"], s["setup"][0], s["setup"][1], f0(s["sw_us"]), f0(s["redis_us"]),
                       f1(s["cmds"]), f2(s["scripts"]), m.get("health", "-")))
    return rows


def clean(out, steps):
    """The steps that ran on Redis throughout; says so when some did not. With none, all of them."""
    ok = [s for s in steps if not s["fell_back"]]
    if len(ok) < len(steps):
        out.append("%d of %d Redis-on steps fell back to node-local limits for a while (a Redis operation took "
                   "over 250 ms); %s" % (len(steps) - len(ok), len(steps),
                                         "the medians leave them out" if ok else "NO clean step: medians of all"))
    return ok or steps


def section_single(out, steps):
    single = [s for s in steps if s["meta"]["kind"] == "single"]
    if not single:
        return
    m = single[0]["meta"]
    out.append("1. Per-node cost, Redis off vs on: one node, %s calls/s for %s s, %d steps"
               % (m["rate"], m["duration"], len(single)))
    out.append(HEAD)
    for s in single:
        out.extend(step_rows(s, False))
    off = [s for s in single if s["meta"]["redis"] == "0"]
    on = clean(out, [s for s in single if s["meta"]["redis"] == "1"])
    a, b = med([s["sw_us"] for s in off]), med([s["sw_us"] for s in on])
    out.append("median sipward CPU per call: Redis off %s us, on %s us (+%s us, %s)"
               % (f0(a), f0(b), f0(b - a), "x%.2f" % (b / a) if a and not math.isnan(a + b) else "-"))
    bg = [med([s[k] for s in off]) for k in ("redis_us", "cmds", "scripts")]
    fg = [med([s[k] for s in on]) for k in ("redis_us", "cmds", "scripts")]
    out.append("median Redis per call with Redis on: %s us CPU, %s commands, %s script round trips; in the Redis-off "
               "steps (other users of the Redis, per call of ours): %s us, %s commands, %s scripts; on - off: "
               "%s us, %s commands, %s scripts" % (f0(fg[0]), f1(fg[1]), f2(fg[2]), f0(bg[0]), f1(bg[1]), f2(bg[2]),
                                                  f0(fg[0] - bg[0]), f1(fg[1] - bg[1]), f2(fg[2] - bg[2])))
    out.append("")


def section_cluster(out, steps):
    cl = [s for s in steps if s["meta"]["kind"] == "cluster"]
    if not cl:
        return
    m = cl[0]["meta"]
    out.append("2. Cluster: %s nodes sharing the store and Redis, one SIPp UAC per node at %s calls/s "
               "(%s in total) for %s s" % (m["nodes"], int(m["rate"]) // int(m["nodes"]), m["rate"], m["duration"]))
    out.append(HEAD)
    for s in cl:
        out.extend(step_rows(s, True))
    one = med([s["sw_us"] for s in steps if s["meta"]["kind"] == "single" and s["meta"]["redis"] == "1"
               and not s["fell_back"]])
    cl = clean(out, cl)
    c = med([s["sw_us"] for s in cl])
    out.append("median sipward CPU per call over the nodes: %s us (one node with Redis: %s us); Redis's CPU per "
               "call %s us; Redis commands per call %s (%s script round trips)"
               % (f0(c), f0(one), f0(med([s["redis_us"] for s in cl])),
                  f1(med([s["cmds"] for s in cl])), f2(med([s["scripts"] for s in cl]))))
    out.append("")


def report(d):
    out = []
    mp = os.path.join(d, "machine.txt")
    if os.path.exists(mp):
        out.extend(open(mp).read().rstrip("\n").split("\n"))
        out.append("")
    sd = os.path.join(d, "steps")
    steps = [step_figures(os.path.join(sd, x)) for x in sorted(os.listdir(sd))
             if os.path.exists(os.path.join(sd, x, "meta"))] if os.path.isdir(sd) else []
    section_single(out, steps)
    section_cluster(out, steps)
    lp = os.path.join(d, "limits.txt")
    if os.path.exists(lp):
        out.extend(open(lp).read().rstrip("\n").split("\n"))
        out.append("")
    out.append("sw_us/call: sipward's utime+stime (/proc/PID/stat) from the UACs' start to their end, over the calls "
               "offered. rd_us/call: the Redis server's, over the same span. cmds/call: INFO total_commands_processed "
               "delta (commands inside Lua scripts included) / calls; evals/c: EVALSHA+EVAL calls / calls. The Redis "
               "is shared with other users of this machine: its CPU and commands are upper bounds. p50/p99: SIPp's "
               "setup time (INVITE -> 200), ms, 4 ms clock granularity; a cluster's \"all\" row pools its nodes' setups.")
    print("\n".join(out))


def main(argv):
    cmds = {
        "provision": lambda a: provision(a[0].rstrip("/"), a[1], a[2], a[3]),
        "limit": lambda a: limit(a[0].rstrip("/"), a[1], a[2], a[3]),
        "ready": lambda a: ready(a[0], a[1:]),
        "health": lambda a: health(a),
        "redis": lambda a: redis_counts(a[0], a[1]),
        "sipp": lambda a: sipp(a[0]),
        "poll": lambda a: poll(a[0], a[1], a[2], a[3:]),
        "fallbacks": lambda a: print(fallbacks(a[0])),
        "report": lambda a: report(a[0]),
    }
    if len(argv) < 2 or argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[argv[1]](argv[2:])


if __name__ == "__main__":
    main(sys.argv)
