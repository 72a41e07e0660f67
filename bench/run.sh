#!/bin/bash
# bench/run.sh -- sipward's SIPp benchmark, side by side with Kamailio (make bench).
#
#   make bench                      # sipward alone
#   PEER=kamailio make bench        # sipward and Kamailio 5.6 in the same run, with ratios (~40 min on
#                                   # 2 cores; longer when the machine is busy: see QUIET_WAIT)
#   QUICK=1 [PEER=kamailio] make bench   # smoke run, a few minutes
#   CLUSTER=3 [QUICK=1] make bench  # instead: Redis-shared limits' cost and a 3-node cluster (bench/cluster.sh)
# Results: OUT (default bench/results/<date>), report in OUT/report.txt; docs/performance.md.
#
# What it does (everything on 127.0.0.0/8, every load bounded in count and time):
#  1. builds bin/sipward into OUT, copies the peer harness (../shared/peer) into OUT/peer;
#  2. provisions a fresh SQLite store through the REST API (provision.py: account acme with
#     IP endpoints 127.0.0.2/32 + 127.0.1.0/28 and NUSERS SIP users, account beta with
#     127.0.2.0/24) and keeps it as a template: every sipward start gets a fresh copy;
#  3. runs the peer harness (compare.sh -> run.sh) for the scenarios ipauth, digest and reg,
#     one scenario at a time (Kamailio then sipward):
#     functional verification first, then steps of rate x DURATION calls at rising rates,
#     bisection, repeat of the top rate (pass = >= 99.9 % success and >= 95 % of the rate);
#     upstream is a SIPp UAS; IP-auth load from 127.0.0.2, digest load from 127.0.0.3;
#  4. runs each scenario again at FIXED_RATE (CPU per 1,000 calls) and, with PEER, at half
#     of Kamailio's highest rate (p99 setup time there), as targets "<name>-fixed", FIXED_ROUNDS
#     times (default 3, QUICK 1), Kamailio then sipward in each round, each a fresh process: the
#     report gives the median CPU, each round's ratio, and p99 over the rounds' setups pooled;
#  4b. scenario relay (in SCENARIOS when asked): the ipauth scenario with the caller's media anchored on a
#     real rtpengine (userspace, started here on RTPE_PORT; the endpoints' media_relay set to always
#     in a copy of the store; sipward --rtpengine): an offer, an answer and a delete per call. Targets
#     "sipward" (signalling only) and "sipward-relay" side by side, search then FIXED_RATE rounds; the
#     rtpengine's own CPU per fixed step goes to OUT/relay-cpu.tsv (Kamailio with its rtpengine module:
#     not set up here);
#  5. runs the mixed profile (lib/mixed.py: ipauth + digest calls + registrations at once);
#  5b. with BASE_REV (e.g. d728d9a) it builds that revision's cmd/sipward too (a git worktree under
#     /tmp, the same go build) and runs it as target "sipward-base" wherever sipward runs in 3-5 (same
#     flags, a fresh store copy, the same port; Kamailio first, the two sipwards' order alternating by
#     scenario and round); the report adds sipward-base / Kamailio and sipward / sipward-base;
#  6. takes a CPU profile of sipward per scenario at half its highest rate (PROFILE=1, the
#     default except with QUICK; lib/profile.sh, through /debug/pprof with the operator token);
#  7. prints the report (lib/report.py) and writes it to OUT/report.txt.
#
# Knobs (env): PEER, QUICK, OUT, NUSERS, PEER_DIR, SIP_PORT, UAS_PORT, KAM_PORT,
# SCENARIOS (ipauth digest reg mixed; relay on request), RTPE_PORT, FIXED_RATE, FIXED_ROUNDS, MIXED_RATES, PROFILE, QUIET_WAIT,
# SIPWARD_FLAGS (extra serve flags), BASE_REV (an older sipward beside the built one: 5b), and every
# variable of the peer harness's run.sh (RATES, DURATION, HOLD_MS, ...).
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
if [ -n "${CLUSTER:-}" ]; then exec "$HERE/cluster.sh" "$@"; fi   # its own knobs and defaults
: "${PEER=}"                                   # empty: sipward only; kamailio: also Kamailio
: "${QUICK:=0}"
: "${PEER_DIR:=$REPO/../shared/peer}"
: "${NUSERS:=10000}"
: "${SIP_PORT:=5080}"
: "${SCENARIOS=ipauth digest reg mixed}"
: "${SIPWARD_FLAGS=}"
: "${BASE_REV=}"                               # empty: no sipward-base target
: "${OUT:=$HERE/results/$(date +%Y%m%d-%H%M%S)$([ "$QUICK" = 1 ] && echo -quick)}"
: "${UAS_PORT:=5090}" "${KAM_PORT:=5070}" "${RTPE_PORT:=5223}"
if [ "$QUICK" = 1 ]; then
  : "${FIXED_RATE:=400}" "${FIXED_ROUNDS:=1}" "${MIXED_RATES:=200 800}" "${QUIET_WAIT:=15}" "${PROFILE:=0}"
else
  : "${FIXED_RATE:=1000}" "${FIXED_ROUNDS:=3}" "${MIXED_RATES:=500 1000 2000 4000 8000 16000}" "${QUIET_WAIT:=120}"
  : "${PROFILE:=1}"
fi
# The peer harness's settings, the same for every target of the run.
# QUIET_WAIT: how long a step waits for the machine to be quiet (<= QUIET_MAX % of a core busy)
# before it runs anyway, flagged (quiet=0 in steps.tsv); a failed step with foreign load is re-run.
export QUICK UAS_PORT KAM_PORT OUT QUIET_WAIT
export SRC_IPAUTH=127.0.0.2 SRC_DIGEST=127.0.0.3   # IP endpoint 127.0.0.2; 127.0.0.3 is no endpoint
export REQUIRE_XCUSTOMER=0                          # sipward sends X-Sipward-Account/-Endpoint/-User
export BASELINE="${BASELINE-}"                      # sipp<->sipp harness limit: off unless asked
export USERS_CSV="$OUT/peer/sipp/users.csv"
TOKEN="bench-$$-$RANDOM"
REALM=sip.test

main() {
log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$OUT/bench.log" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Processes started here (the template sipward, the harness) are stopped by PID.
SW_PID="" CHILD="" RTPE_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$RTPE_PID" ] && kill -TERM "$RTPE_PID" 2>/dev/null && wait "$RTPE_PID" 2>/dev/null
  [ -n "$CHILD" ] && kill -TERM "$CHILD" 2>/dev/null && wait "$CHILD" 2>/dev/null
  [ -n "$SW_PID" ] && kill -TERM "$SW_PID" 2>/dev/null && wait "$SW_PID" 2>/dev/null
  exit $rc
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

in_bg() { "$@" & CHILD=$!; wait "$CHILD"; local rc=$?; CHILD=""; return $rc; }

mkdir -p "$OUT" || exit 1
for t in go sipp python3 ss tar; do command -v "$t" >/dev/null || die "missing tool: $t (see docs/performance.md)"; done
[ -n "$PEER" ] && [ "$PEER" != kamailio ] && die "PEER=$PEER: only PEER=kamailio is known"
[ "$PEER" = kamailio ] && { command -v kamailio >/dev/null || die "kamailio is not installed (see docs/performance.md)"; }
[ -x "$PEER_DIR/run.sh" ] || die "peer harness not found at $PEER_DIR (set PEER_DIR)"

# ---------------------------------------------------------------- 1. build, harness copy
log "results -> $OUT"
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "$OUT/sipward" ./cmd/sipward) || die "go build failed"
mkdir -p "$OUT/peer"
tar -C "$PEER_DIR" --exclude=./results -cf - . | tar -C "$OUT/peer" -xf - || die "copy of $PEER_DIR failed"
chmod -R u+w "$OUT/peer"
if [ -n "$BASE_REV" ]; then   # 5b: the older binary, from a worktree outside the repository's tree
  BASE_SHA="$(git -C "$REPO" rev-parse --verify --short=12 "$BASE_REV^{commit}")" || die "BASE_REV=$BASE_REV: no such commit"
  BASE_WT="$(mktemp -d /tmp/sipward-base-XXXXXX)" || die "mktemp failed"
  git -C "$REPO" worktree add --detach "$BASE_WT/src" "$BASE_SHA" >> "$OUT/bench.log" 2>&1 &&
    (cd "$BASE_WT/src" && CGO_ENABLED=0 go build -trimpath -o "$OUT/sipward-base" ./cmd/sipward)
  rc=$?
  git -C "$REPO" worktree remove --force "$BASE_WT/src" >> "$OUT/bench.log" 2>&1; rm -rf "$BASE_WT"
  [ "$rc" = 0 ] || die "go build of BASE_REV=$BASE_REV failed"
  log "sipward-base: $BASE_SHA -> $OUT/sipward-base"
fi
if [ "$PEER" = kamailio ]; then
  NUSERS=$NUSERS REALM=$REALM "$OUT/peer/kamailio/mkdb.sh" >> "$OUT/bench.log" 2>&1 || die "mkdb.sh failed"
  python3 "$HERE/lib/provision.py" kamdb "$OUT/peer/kamailio/kamailio.sqlite" "$REALM" "$NUSERS" || exit 1
else
  # run.sh runs mkdb.sh (which needs Kamailio's schemas and rewrites users.csv) when this file is
  # missing or empty; Kamailio does not run without PEER, so a placeholder stands in for it
  echo "placeholder: PEER is not set, Kamailio does not run" > "$OUT/peer/kamailio/kamailio.sqlite"
fi
python3 "$HERE/lib/provision.py" csv "$USERS_CSV" "$NUSERS" || exit 1

# ---------------------------------------------------------------- 2. provisioned template store
provision_template() {   # one attempt: start sipward on a fresh store, provision through the API, stop it
  rm -rf "$TPL"; mkdir -p "$TPL"
  setsid "$OUT/sipward" serve --http-addr 127.0.0.1:0 --sip-addr 127.0.0.1:0 \
    --db "sqlite:$TPL/sipward.db" --key-file "$TPL/sipward.key" --admin-token "$TOKEN" --realm "$REALM" \
    > "$TPL/serve.log" 2>&1 &
  SW_PID=$!
  local http="" ok=1
  for _ in $(seq 1 150); do
    http="$(sed -n 's/.*msg="sipward serving" http=\([^ ]*\) sip=.*/\1/p' "$TPL/serve.log")"
    [ -n "$http" ] && break
    kill -0 "$SW_PID" 2>/dev/null || break
    sleep 0.2
  done
  if [ -z "$http" ]; then
    cat "$TPL/serve.log" >&2; ok=0
  else
    python3 "$HERE/lib/provision.py" api "http://$http" "$TOKEN" "$NUSERS" >> "$OUT/bench.log" 2>&1 || ok=0
  fi
  kill -TERM "$SW_PID" 2>/dev/null; wait "$SW_PID"; SW_PID=""
  [ "$ok" = 1 ]
}
TPL="$OUT/template"
for attempt in 1 2 3; do
  provision_template && break
  log "provisioning attempt $attempt failed (see $TPL/serve.log, $OUT/bench.log)"
  [ "$attempt" = 3 ] && die "provisioning failed"
done
tail -1 "$OUT/bench.log" >&2

# sipward_cmd NAME [BINARY]: a command line that runs sipward (default OUT/sipward) in the foreground
# on a fresh copy of the provisioned store (the harness starts it, measures its CPU and stops it)
sipward_cmd() {
  local d="$OUT/db-$1"
  rm -rf "$d"; mkdir -p "$d"; cp "$TPL"/sipward.db* "$TPL/sipward.key" "$d/"
  echo "${2:-$OUT/sipward} serve --http-addr 127.0.0.1:0 --sip-addr 127.0.0.1:$SIP_PORT \
--db sqlite:$d/sipward.db --key-file $d/sipward.key --admin-token $TOKEN --realm $REALM \
--upstream sip:127.0.0.1:$UAS_PORT --core-addr 127.0.0.1/32 --fraud-threshold -1 --firewall-rate 1000000 $SIPWARD_FLAGS"
}

{
  echo "date: $(date -Is)"; echo "commit: $(cd "$REPO" && git describe --always --dirty 2>/dev/null)"
  echo "nproc: $(nproc)"; echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "kernel: $(uname -srm)"; echo "go: $(go version)"; echo "sipp: $(sipp -v 2>&1 | grep -m1 SIPp | tr -s ' ')"
  [ "$PEER" = kamailio ] && echo "kamailio: $(kamailio -v 2>/dev/null | head -1)"
  [ -n "$BASE_REV" ] && echo "sipward-base: BASE_REV=$BASE_REV ($BASE_SHA: $(git -C "$REPO" log -1 --format=%s "$BASE_SHA"))"
  echo "QUICK=$QUICK PEER=$PEER NUSERS=$NUSERS SCENARIOS=$SCENARIOS FIXED_RATE=$FIXED_RATE FIXED_ROUNDS=$FIXED_ROUNDS MIXED_RATES=$MIXED_RATES"
  echo "sipward: $(sipward_cmd probe)"
} > "$OUT/machine.txt"
rm -rf "$OUT/db-probe"

# ---------------------------------------------------------------- 3. the harness's scenarios
HSCN=""
for s in $SCENARIOS; do case "$s" in ipauth|digest|reg) HSCN="$HSCN $s";; esac; done
HSCN="${HSCN# }"
# Scenario by scenario, so that both targets of one scenario run close together in time (the
# machine is shared: foreign load drifts): search on Kamailio then sipward (and sipward-base), then
# their fixed-rate steps.
# sw_specs DBNAME N: SPECS = the sipwards as compare.sh's NAME=HOST:PORT=COMMAND, "sipward" alone
# without BASE_REV; with it, sipward-base before sipward when N is odd, after it when N is even
sw_specs() {
  local new="sipward=127.0.0.1:$SIP_PORT=$(sipward_cmd "$1")"
  SPECS=("$new")
  [ -n "$BASE_REV" ] || return 0
  local base="sipward-base=127.0.0.1:$SIP_PORT=$(sipward_cmd "base-$1" "$OUT/sipward-base")"
  if [ $(($2 % 2)) = 1 ]; then SPECS=("$base" "$new"); else SPECS=("$new" "$base"); fi
}
sno=0
for s in $HSCN; do
  sno=$((sno + 1))
  sw_specs "main-$s" "$sno"
  log "scenario $s: search (targets: ${PEER:+kamailio, }${SPECS[*]%%=*})"
  if [ "$PEER" = kamailio ]; then
    SCENARIOS="$s" in_bg "$OUT/peer/compare.sh" "${SPECS[@]}"
  else
    SCENARIOS="$s" SKIP_KAMAILIO=1 in_bg "$OUT/peer/compare.sh" "${SPECS[@]}"
  fi
  [ $? = 0 ] || log "the harness reported a failure for $s (see $OUT/run.log); continuing with what was measured"

  # ------------------------------------------------------------ 4. fixed rate, half of Kamailio's max
  rates="$FIXED_RATE"
  if [ "$PEER" = kamailio ]; then
    half="$(python3 "$HERE/lib/report.py" half "$OUT/steps.tsv" kamailio "$s")"
    [ -n "$half" ] && [ "$half" != 0 ] && [ "$half" != "$FIXED_RATE" ] && rates="$(printf '%s\n' $FIXED_RATE $half | sort -n | tr '\n' ' ')"
  fi
  common=(RATES="$rates" REFINE=0 REPEAT=0 VERIFY=0 SCENARIOS="$s" BASELINE=)
  for round in $(seq 1 "$FIXED_ROUNDS"); do
    log "scenario $s: fixed-rate steps at $rates/s, round $round of $FIXED_ROUNDS"
    if [ "$PEER" = kamailio ]; then
      in_bg env "${common[@]}" TARGET= TARGET_NAME=kamailio-fixed "$OUT/peer/run.sh" || log "kamailio-fixed $s: failure"
    fi
    sw_specs "fixed-$s" $((sno + round + 1))
    for spec in "${SPECS[@]}"; do
      n="${spec%%=*}"
      in_bg env "${common[@]}" TARGET="127.0.0.1:$SIP_PORT" TARGET_NAME="$n-fixed" \
        TARGET_CMD="${spec#*=*=}" "$OUT/peer/run.sh" || log "$n-fixed $s: failure"
    done
  done
  rm -rf "$OUT/db-main-$s" "$OUT/db-fixed-$s" "$OUT/db-base-main-$s" "$OUT/db-base-fixed-$s"
done

# ---------------------------------------------------------------- 4b. the media relay's cost
if [[ " $SCENARIOS " == *" relay "* ]]; then
  command -v rtpengine >/dev/null || die "scenario relay: rtpengine is not installed (apt-get install rtpengine-daemon)"
  # four sockets per relayed call: at 1,000 calls/s held 1 s the default 1,024 descriptors run out
  # ("Too many open files", then "Ran out of ports"): the soft limit is raised to the hard one
  (ulimit -n "$(ulimit -Hn)" && exec rtpengine --config-file=none --interface=127.0.0.1 --listen-ng="127.0.0.1:$RTPE_PORT" \
    --foreground --log-stderr --table=-1 --delete-delay=0 --port-min=30000 --port-max=59999 --num-threads=2 \
    --log-level=4) > "$OUT/rtpengine.log" 2>&1 &
  RTPE_PID=$!
  sleep 1
  kill -0 "$RTPE_PID" 2>/dev/null || die "rtpengine did not start (see $OUT/rtpengine.log)"
  RTPL="$OUT/template-relay"; rm -rf "$RTPL"; mkdir -p "$RTPL"; cp "$TPL"/sipward.db* "$TPL/sipward.key" "$RTPL/"
  python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE ip_endpoints SET media_relay='always'\"); c.commit()" \
    "$RTPL/sipward.db" || die "media_relay always in the relay store failed"
  relay_cmd() {   # relay_cmd NAME: sipward with --rtpengine on a fresh copy of the relay store
    local d="$OUT/db-relay-$1"
    rm -rf "$d"; mkdir -p "$d"; cp "$RTPL"/sipward.db* "$RTPL/sipward.key" "$d/"
    echo "$OUT/sipward serve --http-addr 127.0.0.1:0 --sip-addr 127.0.0.1:$SIP_PORT \
--db sqlite:$d/sipward.db --key-file $d/sipward.key --admin-token $TOKEN --realm $REALM \
--upstream sip:127.0.0.1:$UAS_PORT --core-addr 127.0.0.1/32 --fraud-threshold -1 --firewall-rate 1000000 \
--rtpengine udp:127.0.0.1:$RTPE_PORT $SIPWARD_FLAGS"
  }
  rtpe_ticks() { awk '{print $14 + $15}' "/proc/$RTPE_PID/stat"; }
  log "scenario relay: search (targets: sipward, sipward-relay; ipauth calls)"
  SCENARIOS=ipauth SKIP_KAMAILIO=1 in_bg "$OUT/peer/compare.sh" "sipward=127.0.0.1:$SIP_PORT=$(sipward_cmd relay-plain)" \
    "sipward-relay=127.0.0.1:$SIP_PORT=$(relay_cmd main)" || log "the harness reported a failure for relay"
  printf 'round\trate\tcalls\trtpengine_cpu_s\trtpengine_us_per_call\n' > "$OUT/relay-cpu.tsv"
  for round in $(seq 1 "$FIXED_ROUNDS"); do
    log "scenario relay: fixed-rate steps at $FIXED_RATE/s, round $round of $FIXED_ROUNDS"
    common=(RATES="$FIXED_RATE" REFINE=0 REPEAT=0 VERIFY=0 SCENARIOS=ipauth BASELINE=)
    in_bg env "${common[@]}" TARGET="127.0.0.1:$SIP_PORT" TARGET_NAME="sipward-fixed" \
      TARGET_CMD="$(sipward_cmd relay-plain-fixed)" "$OUT/peer/run.sh" || log "sipward-fixed relay: failure"
    t0="$(rtpe_ticks)"
    in_bg env "${common[@]}" TARGET="127.0.0.1:$SIP_PORT" TARGET_NAME="sipward-relay-fixed" \
      TARGET_CMD="$(relay_cmd fixed)" "$OUT/peer/run.sh" || log "sipward-relay-fixed relay: failure"
    t1="$(rtpe_ticks)"
    # the step's calls: n of the last sipward-relay-fixed row of steps.tsv
    python3 -c "
import csv, os, sys
rows = [r for r in csv.DictReader(open(sys.argv[4]), delimiter='\t') if r['target'] == 'sipward-relay-fixed']
n = int(rows[-1]['n']) if rows else 0
t = (int(sys.argv[2]) - int(sys.argv[1])) / os.sysconf('SC_CLK_TCK')
print('%s\t%s\t%d\t%.2f\t%s' % (sys.argv[3], sys.argv[5], n, t, '%.0f' % (t / n * 1e6) if n else '-'))" \
      "$t0" "$t1" "$round" "$OUT/steps.tsv" "$FIXED_RATE" >> "$OUT/relay-cpu.tsv"
  done
  log "rtpengine CPU per relayed call: $OUT/relay-cpu.tsv"; cat "$OUT/relay-cpu.tsv" >&2
  kill -TERM "$RTPE_PID" 2>/dev/null; wait "$RTPE_PID" 2>/dev/null; RTPE_PID=""
  rm -rf "$OUT"/db-relay-* "$OUT/db-relay-plain" "$OUT/db-relay-plain-fixed"
fi

# ---------------------------------------------------------------- 5. mixed profile
if [[ " $SCENARIOS " == *" mixed "* ]]; then
  margs=(--out "$OUT" --peer "$OUT/peer" --users "$USERS_CSV" --uas-port "$UAS_PORT" --rates "$MIXED_RATES"
         --fixed "$FIXED_RATE")
  [ "$QUICK" = 1 ] && margs+=(--duration 4 --refine 0 --repeat 0)
  if [ "$PEER" = kamailio ]; then
    log "mixed profile: kamailio"
    in_bg python3 "$HERE/lib/mixed.py" "${margs[@]}" --name kamailio --kamailio "127.0.0.1:$KAM_PORT" \
      || log "mixed kamailio: failure"
  fi
  sw_specs mixed 1
  for spec in "${SPECS[@]}"; do
    n="${spec%%=*}"
    log "mixed profile: $n"
    in_bg python3 "$HERE/lib/mixed.py" "${margs[@]}" --name "$n" --target "127.0.0.1:$SIP_PORT" \
      --cmd "${spec#*=*=}" || log "mixed $n: failure"
  done
fi

# ---------------------------------------------------------------- 6. CPU profiles under load
if [ "$PROFILE" = 1 ] && [ -n "$HSCN" ]; then
  for s in $HSCN; do
    r="$(python3 "$HERE/lib/report.py" half "$OUT/steps.tsv" sipward "$s")"
    [ -n "$r" ] && [ "$r" -ge "$FIXED_RATE" ] 2>/dev/null || r="$FIXED_RATE"
    log "CPU profile of sipward: $s at $r/s"
    in_bg "$HERE/lib/profile.sh" "$OUT" "$OUT/peer" "$s" "$r" 20 "$TOKEN" "$SIP_PORT" "$UAS_PORT" "$USERS_CSV" \
      -- $(sipward_cmd "profile-$s") 2>&1 | tee -a "$OUT/bench.log"
  done
fi

# ---------------------------------------------------------------- 7. report
python3 "$HERE/lib/report.py" report "$OUT" | tee "$OUT/report.txt"
log "done: $OUT/report.txt"
}

main "$@"; exit $?
