#!/bin/bash
# tail.sh -- one of the harness's steps against a fresh server, and the share of slow call setups.
#
#   tail.sh RUN NAME SCENARIO RATE [-- SIPWARD SERVE FLAGS...]
#
# RUN is a bench/run.sh results directory (its provisioned store template, its copy of the peer
# harness, its users and token are used; for Kamailio it must come from a PEER=kamailio run).
# NAME kamailio runs the harness's managed Kamailio; any other NAME runs RUN/sipward (or $BIN, a
# command, e.g. "env GODEBUG=gctrace=1 /path/sipward") on a fresh copy of the store, with the flags
# after --. One step of RATE x DURATION (default 10 s) calls of SCENARIO (ipauth, digest, reg), then
# prints one line: the share of setups (SIPp's RTD 1) that took 8 ms or more -- two SIPp ticks; a
# share above 1 % makes p99 a tick higher -- and the step's p99, target CPU and foreign load.
# Alternate NAMEs run after run to compare on a noisy machine (docs/performance.md § 8, § 9).
# Ports: sipward 5280, UAS 5290, Kamailio 5270 (as in § 9's bench command).
set -uo pipefail
RUN="$(cd "$1" && pwd)" NAME="$2" SCN="$3" RATE="$4"; shift 4; [ "${1:-}" = -- ] && shift
o="$RUN/tail/$NAME-$SCN-$RATE-$(date +%H%M%S)"; mkdir -p "$o"
common=(OUT="$o" RATES="$RATE" DURATION="${DURATION:-10}" REFINE=0 REPEAT=0 VERIFY=0 SCENARIOS="$SCN"
        BASELINE= QUIET_WAIT="${QUIET_WAIT:-30}" UAS_PORT=5290 KAM_PORT=5270 SRC_IPAUTH=127.0.0.2
        SRC_DIGEST=127.0.0.3 REQUIRE_XCUSTOMER=0 USERS_CSV="$RUN/peer/sipp/users.csv")
if [ "$NAME" = kamailio ]; then
  (cd "$RUN/peer" && env "${common[@]}" TARGET= TARGET_NAME=kamailio ./run.sh > "$o/harness.log" 2>&1)
else
  token="$(sed -n 's/.*--admin-token \([^ ]*\).*/\1/p' "$RUN/machine.txt")"
  d="$o/db"; mkdir -p "$d"; cp "$RUN"/template/sipward.db* "$RUN/template/sipward.key" "$d/"
  cmd="${BIN:-$RUN/sipward} serve --http-addr 127.0.0.1:0 --sip-addr 127.0.0.1:5280 --db sqlite:$d/sipward.db \
--key-file $d/sipward.key --admin-token $token --realm sip.test --upstream sip:127.0.0.1:5290 \
--core-addr 127.0.0.1/32 --fraud-threshold -1 --firewall-rate 1000000 $*"
  (cd "$RUN/peer" && env "${common[@]}" TARGET=127.0.0.1:5280 TARGET_NAME=sipward TARGET_CMD="$cmd" ./run.sh \
    > "$o/harness.log" 2>&1)
  rm -rf "$d"
fi
slow="$(zcat "$o"/steps/*/rtt.csv.gz 2>/dev/null | awk -F';' 'NR > 1 && $3 == 1 {n++; if ($2 >= 8) s++}
  END {if (n) printf "%.3f %% of %d setups >= 8 ms", s / n * 100, n; else printf "no setups"}')"
step="$(awk -F'\t' 'NR == 1 {for (i = 1; i <= NF; i++) h[$i] = i; next}
  {printf "achieved %s/s, failed %s, p99 %s ms, target CPU %s %%, foreign %s %%", $h["achieved"], $h["failed"],
   $h["rtd1_p99"], $h["target_cpu"], $h["foreign_cpu"]}' "$o/steps.tsv" 2>/dev/null)"
echo "$NAME $SCN@$RATE: $slow; $step ($o)"
