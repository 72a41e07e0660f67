#!/bin/bash
# bench/cluster.sh -- what Redis-shared limits cost, and a cluster of sipward nodes under SIPp load
# (make bench CLUSTER=3; bench/run.sh hands over here when CLUSTER is set).
#
#   CLUSTER=3 make bench            # ~6 min: 3 rounds of the per-node steps, 3 cluster rounds, the limits step
#   CLUSTER=3 QUICK=1 make bench    # smoke run, ~2 min
# Results: OUT (default bench/results/<date>-cluster[-quick]), report in OUT/report.txt; docs/scaling.md.
#
# What it does (everything on 127.0.0.0/8; every process bounded in time and stopped by PID at the end):
#  1. builds OUT/sipward, provisions a template SQLite store through the REST API (lib/cluster.py
#     provision: account acme, channels 1,000,000, with the IP endpoint 127.0.0.2/32, channels
#     ENDPOINT_CHANNELS and cps ENDPOINT_CPS: high enough never to refuse, so that every call runs
#     the Redis paths, Acquire (endpoint + account, one Lua script), Allow (CPS, one script) and
#     Release (one script));
#  2. per-node cost, Redis off vs on: one node (run.sh's sipward flags: --fraud-threshold -1
#     --firewall-rate 1000000, upstream a SIPp UAS) at FIXED_RATE calls/s of the peer harness's
#     uac_ipauth.xml for DURATION s, ROUNDS rounds, off then on in odd rounds, on then off in even
#     ones; each step a fresh process on a fresh copy of the store. Measured over the span of the
#     load: sipward's utime+stime, the Redis server's, Redis's total_commands_processed and its
#     EVALSHA+EVAL calls; SIPp's passed/failed calls and setup times;
#  3. a cluster of CLUSTER nodes on consecutive SIP ports from SIP_PORT, sharing one copy of the
#     store and Redis (key prefix REDIS_PREFIX + "s<step>:"), one SIPp UAC per node at FIXED_RATE/CLUSTER calls/s
#     (the same total), DURATION s, ROUNDS rounds: the same figures per node and in total;
#  4. "limits hold": the same cluster with the endpoint's channels set to LIMIT through the API,
#     LIMIT_RATE calls/s offered in total for DURATION s, each held LIMIT_HOLD_MS (far more than
#     LIMIT at once); every 200 ms the calls up in the cluster (node 1's merged GET /api/v1/calls) and
#     node 1's sipward_limits_channels_in_use{kind="endpoint"} (cluster-wide, read from Redis) is read;
#     the maxima must not exceed LIMIT;
#  5. the report (lib/cluster.py report) to stdout and OUT/report.txt; the run's Redis keys deleted.
#
# Knobs (env): CLUSTER, QUICK, OUT, PEER_DIR, SIP_PORT, UAS_PORT, UAC_PORT, REDIS, REDIS_PREFIX,
# FIXED_RATE (1000; QUICK 300), DURATION (30; QUICK 10), ROUNDS (3; QUICK 1), HOLD_MS (1000),
# ENDPOINT_CHANNELS, ENDPOINT_CPS, LIMIT (50), LIMIT_RATE (300; QUICK 150), LIMIT_HOLD_MS (2000),
# STEPS (single cluster limits), SIPWARD_FLAGS (extra serve flags, every node).
# The Redis is used, never flushed nor stopped: it may be shared, so its CPU and command counts are
# upper bounds of sipward's share.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
: "${CLUSTER:=3}" "${QUICK:=0}"
: "${PEER_DIR:=$REPO/../shared/peer}"
: "${SIP_PORT:=5080}" "${UAS_PORT:=5090}" "${UAC_PORT:=15062}"
: "${REDIS:=127.0.0.1:6379}" "${REDIS_PREFIX:=sipward-bench-$$-$RANDOM:}"
: "${HOLD_MS:=1000}" "${ENDPOINT_CHANNELS:=100000}" "${ENDPOINT_CPS:=100000}"
: "${LIMIT:=50}" "${LIMIT_HOLD_MS:=2000}" "${STEPS:=single cluster limits}" "${SIPWARD_FLAGS=}"
: "${OUT:=$HERE/results/$(date +%Y%m%d-%H%M%S)-cluster$([ "$QUICK" = 1 ] && echo -quick)}"
if [ "$QUICK" = 1 ]; then
  : "${FIXED_RATE:=300}" "${DURATION:=10}" "${ROUNDS:=1}" "${LIMIT_RATE:=150}"
else
  : "${FIXED_RATE:=1000}" "${DURATION:=30}" "${ROUNDS:=3}" "${LIMIT_RATE:=300}"
fi
TOKEN="bench-$$-$RANDOM"
REALM=sip.test
PY="$HERE/lib/cluster.py"
REDIS_HOST="${REDIS%:*}" REDIS_PORT="${REDIS##*:}"

log() { printf '%s cluster: %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$OUT/bench.log" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Every process started here is in PIDS and stopped by PID: at the end of its step, or by cleanup.
PIDS=()
stop_pids() {   # stop_pids PID...: SIGTERM, up to 15 s (sipward drains), then SIGKILL
  local p i
  for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
  for p in "$@"; do
    for ((i = 0; i < 75; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  local keep=() q
  for q in "${PIDS[@]}"; do [[ " $* " == *" $q "* ]] || keep+=("$q"); done
  PIDS=("${keep[@]}")
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ "${#PIDS[@]}" -gt 0 ] && stop_pids "${PIDS[@]}"
  if command -v redis-cli >/dev/null; then   # this run's keys only (they also expire by themselves)
    redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" --scan --pattern "$REDIS_PREFIX*" 2>/dev/null |
      xargs -r -n 100 redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" unlink > /dev/null 2>&1
  fi
  exit $rc
}

ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
udp_free() { [ -z "$(ss -Hlun "sport = :$1" 2>/dev/null)" ]; }

# provision_template: start sipward on a fresh store, create the account through the API, stop it.
# Sets EID (the endpoint's id).
provision_template() {
  TPL="$OUT/template"; rm -rf "$TPL"; mkdir -p "$TPL"
  setsid "$OUT/sipward" serve --http-addr 127.0.0.1:0 --sip-addr 127.0.0.1:0 \
    --db "sqlite:$TPL/sipward.db" --key-file "$TPL/sipward.key" --admin-token "$TOKEN" --realm "$REALM" \
    > "$TPL/serve.log" 2>&1 &
  local pid=$! http
  PIDS+=("$pid")
  http="$(wait_serving "$TPL/serve.log" "$pid")" || die "the template sipward did not start (see $TPL/serve.log)"
  EID="$(python3 "$PY" provision "http://$http" "$TOKEN" "$ENDPOINT_CHANNELS" "$ENDPOINT_CPS")" || die "provisioning failed"
  stop_pids "$pid"
  log "template store: account acme, endpoint $EID (127.0.0.2/32, channels $ENDPOINT_CHANNELS, cps $ENDPOINT_CPS)"
}

wait_serving() {   # wait_serving LOG PID: prints the HTTP address once sipward serves
  local http i
  for ((i = 0; i < 150; i++)); do
    http="$(sed -n 's/.*msg="sipward serving" http=\([^ ]*\) sip=.*/\1/p' "$1")"
    [ -n "$http" ] && { echo "$http"; return 0; }
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

# start_nodes N REDIS(0|1) DIR: N sipward nodes on SIP_PORT.. sharing DIR's store (and Redis when
# REDIS=1), started one after the other; sets NODE_PIDS and NODE_URLS.
start_nodes() {
  local n="$1" redis="$2" d="$3" i pid http extra=()
  # a prefix of its own per step: holds a step leaves in Redis (a release that failed while the
  # node ran node-local lets its hold run out its lease) must not count in the next one
  [ "$redis" = 1 ] && extra=(--redis "$REDIS" --redis-prefix "${REDIS_PREFIX}s$STEP_NO:")
  NODE_PIDS=() NODE_URLS=()
  for ((i = 0; i < n; i++)); do
    udp_free $((SIP_PORT + i)) || die "UDP port $((SIP_PORT + i)) is in use (set SIP_PORT)"
    # shellcheck disable=SC2086  # SIPWARD_FLAGS is a list of flags
    setsid "$OUT/sipward" serve --http-addr 127.0.0.1:0 --sip-addr "127.0.0.1:$((SIP_PORT + i))" \
      --db "sqlite:$d/sipward.db" --key-file "$d/sipward.key" --admin-token "$TOKEN" --realm "$REALM" \
      --upstream "sip:127.0.0.1:$UAS_PORT" --core-addr 127.0.0.1/32 --fraud-threshold -1 --firewall-rate 1000000 \
      "${extra[@]}" $SIPWARD_FLAGS > "$d/node$((i + 1)).log" 2>&1 &
    pid=$!
    PIDS+=("$pid"); NODE_PIDS+=("$pid")
    http="$(wait_serving "$d/node$((i + 1)).log" "$pid")" || die "node $((i + 1)) did not start (see $d/node$((i + 1)).log)"
    NODE_URLS+=("http://$http")
  done
  python3 "$PY" ready 20 "${NODE_URLS[@]}" || die "the nodes' snapshots did not catch up"
}

start_uas() {   # start_uas DIR LIFETIME_S
  udp_free "$UAS_PORT" || die "UDP port $UAS_PORT is in use (set UAS_PORT)"
  ( cd "$1" && exec sipp -sf "$OUT/peer/sipp/uas.xml" -i 127.0.0.1 -p "$UAS_PORT" -bind_local -t u1 -nostdin \
      -buff_size 4194304 -timeout "$2s" -trace_stat -stf uas-stat.csv -fd 1 > uas.out 2>&1 ) &
  UAS_PID=$!
  PIDS+=("$UAS_PID")
  sleep 1
  kill -0 "$UAS_PID" 2>/dev/null || die "the SIPp UAS did not start (see $1/uas.out)"
}

# start_uacs DIR SCENARIO_XML TOTAL_RATE DURATION HOLD_MS: one SIPp UAC per node (NODE_URLS), from
# 127.0.0.2, TOTAL_RATE/N calls/s each (-r TOTAL_RATE -rp N s), TOTAL_RATE*DURATION/N calls each; sets UAC_PIDS
start_uacs() {
  local d="$1" xml="$2" rate="$3" dur="$4" hold="$5" n="${#NODE_URLS[@]}" i u
  UAC_PIDS=()
  for ((i = 0; i < n; i++)); do
    u="$d/uac$((i + 1))"; mkdir -p "$u"
    udp_free $((UAC_PORT + i)) || die "UDP port $((UAC_PORT + i)) on 127.0.0.2 is in use (set UAC_PORT)"
    ( cd "$u" && exec sipp "127.0.0.1:$((SIP_PORT + i))" -sf "$xml" -i 127.0.0.2 -p $((UAC_PORT + i)) -bind_local \
        -t u1 -s 1000 -d "$hold" -r "$rate" -rp $((1000 * n)) -m $((rate * dur / n)) -nostdin -buff_size 4194304 \
        -recv_timeout 8000 -timeout $((dur * 3 + hold / 1000 + 20))s -trace_stat -stf stat.csv -fd 1 \
        -trace_rtt -rtt_freq 1 -trace_err -error_file err.log -max_log_size 2000000 > uac.out 2>&1 ) &
    UAC_PIDS+=($!); PIDS+=($!)
  done
}

wait_uacs() {   # wait_uacs DEADLINE_S: until every UAC ends; stops those still running at the deadline
  local end=$((SECONDS + $1)) p
  for p in "${UAC_PIDS[@]}"; do
    while kill -0 "$p" 2>/dev/null && ((SECONDS < end)); do sleep 0.2; done
  done
  stop_pids "${UAC_PIDS[@]}"
}

REDIS_PID=""
counters() {   # counters: "sw_ticks(node1 node2 …) | redis_ticks cmds scripts" of this moment
  local p out=""
  for p in "${NODE_PIDS[@]}"; do out="$out $(ticks "$p")"; done
  echo "${out# }|${REDIS_PID:+$(ticks "$REDIS_PID")} $(python3 "$PY" redis "$REDIS_HOST" "$REDIS_PORT" 2>/dev/null || echo "- -")"
}

STEP_NO=0
# run_load NAME KIND ROUND NODES REDIS(0|1): one load step of the peer harness's ipauth calls at
# FIXED_RATE for DURATION s through NODES nodes; writes OUT/steps/NNN-NAME/{meta,uacI/,db/node*.log}
run_load() {
  local name="$1" kind="$2" round="$3" nodes="$4" redis="$5" d a b i
  STEP_NO=$((STEP_NO + 1))
  d="$OUT/steps/$(printf '%03d' "$STEP_NO")-$name"; mkdir -p "$d/db"
  cp "$TPL"/sipward.db* "$TPL/sipward.key" "$d/db/"
  log "step $STEP_NO: $name (round $round, $nodes node(s), Redis $([ "$redis" = 1 ] && echo on || echo off), $FIXED_RATE calls/s, $DURATION s)"
  start_nodes "$nodes" "$redis" "$d/db"
  start_uas "$d" $((DURATION * 4 + HOLD_MS / 1000 + 60))
  a="$(counters)"
  start_uacs "$d" "$OUT/peer/sipp/uac_ipauth.xml" "$FIXED_RATE" "$DURATION" "$HOLD_MS"
  wait_uacs $((DURATION * 3 + HOLD_MS / 1000 + 40))
  b="$(counters)"
  local health; health="$(python3 "$PY" health "${NODE_URLS[@]}")"
  stop_pids "$UAS_PID" "${NODE_PIDS[@]}"
  write_meta "$d" "$kind" "$round" "$nodes" "$redis" "$FIXED_RATE" "$a" "$b" "$health"
  rm -f "$d"/db/sipward.db* "$d/db/sipward.key"
  python3 -c "import sys; sys.path.insert(0, '$HERE/lib'); import cluster as c
s = c.step_figures('$d'); print('  calls %d passed %d failed %d; sipward %s us/call, redis %s us/call, %s cmds/call, %s scripts/call; health %s'
  % (s['calls'], s['passed'], s['failed'], c.f0(s['sw_us']), c.f0(s['redis_us']), c.f1(s['cmds']), c.f1(s['scripts']), s['meta']['health']))" |
    tee -a "$OUT/bench.log" >&2
}

# write_meta DIR KIND ROUND NODES REDIS RATE BEFORE AFTER HEALTH (BEFORE/AFTER from counters)
write_meta() {
  local a="$7" b="$8" sw=() i
  local -a sa sb ra rb
  read -r -a sa <<< "${a%%|*}"; read -r -a sb <<< "${b%%|*}"
  read -r -a ra <<< "${a#*|}"; read -r -a rb <<< "${b#*|}"
  for i in "${!sa[@]}"; do sw+=($((sb[i] - sa[i]))); done
  delta() { [[ "$1" =~ ^[0-9]+$ && "$2" =~ ^[0-9]+$ ]] && echo $(($2 - $1)) || echo -; }
  {
    echo "kind=$2"; echo "round=$3"; echo "nodes=$4"; echo "redis=$5"; echo "rate=$6"
    echo "duration=$DURATION"; echo "hold_ms=$HOLD_MS"; echo "clk_tck=$(getconf CLK_TCK)"
    echo "sw_ticks=${sw[*]}"
    if [ "${#ra[@]}" = 3 ]; then
      echo "redis_ticks=$(delta "${ra[0]}" "${rb[0]}")"; echo "redis_cmds=$(delta "${ra[1]}" "${rb[1]}")"
      echo "redis_scripts=$(delta "${ra[2]}" "${rb[2]}")"
    else
      echo "redis_cmds=$(delta "${ra[0]}" "${rb[0]}")"; echo "redis_scripts=$(delta "${ra[1]}" "${rb[1]}")"
    fi
    echo "health=$9"
  } > "$1/meta"
}

# limits_step: the cluster with the endpoint's channels at LIMIT, offered far more; OUT/limits.txt
limits_step() {
  local d
  STEP_NO=$((STEP_NO + 1))
  d="$OUT/steps/$(printf '%03d' "$STEP_NO")-limits"; mkdir -p "$d/db"
  cp "$TPL"/sipward.db* "$TPL/sipward.key" "$d/db/"
  log "step $STEP_NO: limits hold ($CLUSTER nodes, endpoint channels $LIMIT, $LIMIT_RATE calls/s offered held $LIMIT_HOLD_MS ms, $DURATION s)"
  start_nodes "$CLUSTER" 1 "$d/db"
  python3 "$PY" limit "${NODE_URLS[0]}" "$TOKEN" "$EID" "$LIMIT" || die "setting the endpoint's channels failed"
  python3 "$PY" ready 20 "${NODE_URLS[@]}" || die "the nodes did not take the new limit"
  python3 "$PY" poll "$d/calls.tsv" "$d/stop" "$TOKEN" "${NODE_URLS[@]}" > "$d/poll.out" 2>&1 &
  local poller=$!; PIDS+=("$poller")
  start_uas "$d" $((DURATION * 4 + LIMIT_HOLD_MS / 1000 + 60))
  start_uacs "$d" "$HERE/lib/uac_ipauth_limit.xml" "$LIMIT_RATE" "$DURATION" "$LIMIT_HOLD_MS"
  wait_uacs $((DURATION * 3 + LIMIT_HOLD_MS / 1000 + 40))
  touch "$d/stop"
  local i; for ((i = 0; i < 50; i++)); do kill -0 "$poller" 2>/dev/null || break; sleep 0.1; done
  stop_pids "$poller"
  local rejected=0 u r health
  for u in "${NODE_URLS[@]}"; do
    r="$(curl -s -m 5 "$u/metrics" | sed -n 's/^sipward_limits_rejected_total{limit="channels"} \([0-9.e+]*\)$/\1/p')"
    rejected=$((rejected + ${r:-0}))
  done
  health="$(python3 "$PY" health "${NODE_URLS[@]}")"
  stop_pids "$UAS_PID" "${NODE_PIDS[@]}"
  local fb; fb="$(python3 "$PY" fallbacks "$d")"
  [ "$fb" != 0 ] && health="$health; FELL BACK to node-local limits: $fb Redis warnings in the nodes' logs"
  rm -f "$d"/db/sipward.db* "$d/db/sipward.key"
  limits_report "$d" "$rejected" "$health" > "$OUT/limits.txt"
  cat "$OUT/limits.txt" >&2
}

limits_report() {   # limits_report DIR REJECTED HEALTH
  local d="$1" max_sum max_gauge samples answered=0 failed=0 offered=0 i f
  read -r max_sum max_gauge samples < "$d/poll.out"
  for ((i = 1; i <= CLUSTER; i++)); do
    read -r -a f <<< "$(python3 "$PY" sipp "$d/uac$i")"   # created passed failed answered p50 p99
    offered=$((offered + f[0])); failed=$((failed + f[2])); answered=$((answered + f[3]))
  done
  # the verdict is on calls up (what the core sees); holds in Redis above the limit are calls'
  # holds whose release failed (a node fell back), which only refuse more
  local verdict="HOLDS"
  if ! [[ "$samples" =~ ^[0-9]+$ && "$max_sum" =~ ^-?[0-9]+$ && "$max_gauge" =~ ^-?[0-9]+$ ]]; then
    verdict="NOT MEASURED (the poller failed: see $d/poll.out)"; max_sum=-1 max_gauge=-1 samples=0
  fi
  [ "$max_sum" -gt "$LIMIT" ] && verdict="EXCEEDED"
  [ "$samples" -lt 5 ] && verdict="NOT MEASURED (too few samples)"
  [ "${max_gauge:-0}" -gt "$LIMIT" ] && verdict="$verdict; Redis counted ${max_gauge} holds at once: holds of ended calls whose release failed"
  echo "3. Limits hold: $CLUSTER nodes, endpoint channels $LIMIT (PATCH through node 1's API), $LIMIT_RATE calls/s offered in total held $LIMIT_HOLD_MS ms, $DURATION s"
  echo "offered $offered, answered $answered (at most about $((LIMIT * DURATION * 1000 / LIMIT_HOLD_MS)): the limit full throughout), refused by the channel limit $2 (sipward_limits_rejected_total{limit=\"channels\"}, summed), SIPp failures $failed"
  echo "max calls at once in the cluster (node 1's merged GET /api/v1/calls): ${max_sum:--}; max sipward_limits_channels_in_use{kind=\"endpoint\"} (node 1, cluster-wide): ${max_gauge:--}; $samples samples 200 ms apart"
  echo "limit $LIMIT: $verdict; health at the end: $3"
}

main() {
  mkdir -p "$OUT" || exit 1
  trap cleanup EXIT
  trap 'log interrupted; exit 130' INT TERM
  for t in go sipp python3 ss curl awk getconf; do command -v "$t" >/dev/null || die "missing tool: $t (see docs/performance.md)"; done
  [ -f "$PEER_DIR/sipp/uac_ipauth.xml" ] || die "peer harness not found at $PEER_DIR (set PEER_DIR)"
  [[ "$CLUSTER" =~ ^[1-9][0-9]*$ ]] || die "CLUSTER=$CLUSTER: want a number of nodes"
  python3 "$PY" redis "$REDIS_HOST" "$REDIS_PORT" > /dev/null || die "no Redis at $REDIS (set REDIS)"
  REDIS_PID="$(redis_pid)"
  [ -n "$REDIS_PID" ] || log "the Redis server's process is not visible here: its CPU is not measured"

  log "results -> $OUT"
  (cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "$OUT/sipward" ./cmd/sipward) || die "go build failed"
  mkdir -p "$OUT/peer/sipp"; cp "$PEER_DIR"/sipp/*.xml "$OUT/peer/sipp/" || die "copy of $PEER_DIR/sipp failed"
  provision_template
  machine > "$OUT/machine.txt"

  local r s
  if [[ " $STEPS " == *" single "* ]]; then
    for ((r = 1; r <= ROUNDS; r++)); do
      for s in $( ((r % 2)) && echo "0 1" || echo "1 0"); do
        run_load "single-redis$s-r$r" single "$r" 1 "$s"
      done
    done
  fi
  if [[ " $STEPS " == *" cluster "* ]]; then
    for ((r = 1; r <= ROUNDS; r++)); do run_load "cluster$CLUSTER-r$r" cluster "$r" "$CLUSTER" 1; done
  fi
  [[ " $STEPS " == *" limits "* ]] && limits_step
  python3 "$PY" report "$OUT" | tee "$OUT/report.txt"
  log "done: $OUT/report.txt"
}

redis_pid() {   # the Redis server's PID when it runs on this machine's process table, else nothing
  local p
  p="$(python3 -c "import sys; sys.path.insert(0, '$HERE/lib'); import cluster, re
m = re.search(r'^process_id:(\d+)', cluster.redis_cmd('$REDIS_HOST', '$REDIS_PORT', 'INFO', 'server'), re.M)
print(m.group(1) if m else '')" 2>/dev/null)"
  [ -n "$p" ] && [ -r "/proc/$p/stat" ] && grep -q redis "/proc/$p/comm" 2>/dev/null && echo "$p"
}

machine() {
  echo "date: $(date -Is)"; echo "commit: $(cd "$REPO" && git describe --always --dirty 2>/dev/null)"
  echo "nproc: $(nproc)"; echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "kernel: $(uname -srm)"; echo "go: $(go version)"; echo "sipp: $(sipp -v 2>&1 | grep -m1 SIPp | tr -s ' ')"
  echo "redis: $REDIS $(python3 -c "import sys; sys.path.insert(0, '$HERE/lib'); import cluster, re
m = re.search(r'^redis_version:(\S+)', cluster.redis_cmd('$REDIS_HOST', '$REDIS_PORT', 'INFO', 'server'), re.M)
print(m.group(1) if m else '?')" 2>/dev/null) prefix $REDIS_PREFIX (pid ${REDIS_PID:-not visible})"
  echo "command: CLUSTER=$CLUSTER QUICK=$QUICK FIXED_RATE=$FIXED_RATE DURATION=$DURATION ROUNDS=$ROUNDS HOLD_MS=$HOLD_MS LIMIT=$LIMIT LIMIT_RATE=$LIMIT_RATE LIMIT_HOLD_MS=$LIMIT_HOLD_MS make bench"
  echo "node: $OUT/sipward serve --http-addr 127.0.0.1:0 --sip-addr 127.0.0.1:$SIP_PORT(+i) --db sqlite:STEP/db/sipward.db --key-file STEP/db/sipward.key --admin-token TOKEN --realm $REALM --upstream sip:127.0.0.1:$UAS_PORT --core-addr 127.0.0.1/32 --fraud-threshold -1 --firewall-rate 1000000 [--redis $REDIS --redis-prefix ${REDIS_PREFIX}s<step>:] $SIPWARD_FLAGS"
  echo "uas: sipp -sf uas.xml -i 127.0.0.1 -p $UAS_PORT -bind_local -t u1 -nostdin -buff_size 4194304"
  echo "uac (one per node): sipp 127.0.0.1:$SIP_PORT(+i) -sf uac_ipauth.xml -i 127.0.0.2 -p $UAC_PORT(+i) -bind_local -t u1 -s 1000 -d $HOLD_MS -r $FIXED_RATE -rp 1000*NODES -m $FIXED_RATE*$DURATION/NODES -recv_timeout 8000"
  echo "store: account acme (channels 1000000), IP endpoint 127.0.0.2/32 (channels $ENDPOINT_CHANNELS, cps $ENDPOINT_CPS)"
}

main "$@"; exit $?
