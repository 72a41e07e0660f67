#!/bin/bash
# profile.sh -- a CPU profile of sipward under SIPp load, from its /debug/pprof (operator token).
#
#   profile.sh OUT PEERCOPY SCENARIO RATE SECONDS TOKEN SIP_PORT UAS_PORT USERS_CSV -- SIPWARD COMMAND...
#
# Starts the sipward command (it must listen on 127.0.0.1:SIP_PORT with --http-addr 127.0.0.1:0)
# and the harness's UAS, runs the harness's UAC for SCENARIO at RATE/s for SECONDS (+ 3 s of
# ramp), takes /debug/pprof/profile over the middle SECONDS-2 seconds, and writes
# OUT/profile-SCENARIO.pprof and OUT/profile-SCENARIO.txt (go tool pprof -top). With KIND=heap it
# takes /debug/pprof/heap?gc=1 (what is live, after a forced collection) SECONDS-2 seconds into
# the load instead: OUT/heap-SCENARIO.pprof and .txt. Everything it starts is stopped by PID;
# loads are bounded (sipp -m, -timeout).
set -uo pipefail
OUT="$1" PEER="$2" SCN="$3" RATE="$4" SECS="$5" TOKEN="$6" SIP_PORT="$7" UAS_PORT="$8" USERS="$9"
shift 9; [ "${1:-}" = -- ] && shift
D="$OUT/profile-$SCN"; mkdir -p "$D"
. "$(dirname "${BASH_SOURCE[0]}")/load.sh"
start_sipward profile.sh "$@"
start_uas "$((SECS + 60))"
uac_args profile.sh "$SCN"
n=$((RATE * (SECS + 3)))
( cd "$D" && exec sipp "127.0.0.1:$SIP_PORT" "${args[@]}" -bind_local -t u1 -s 1000 -d 1000 -r "$RATE" -rp 1000 \
    -m "$n" -nostdin -buff_size 4194304 -recv_timeout 8000 -timeout "$((SECS + 40))s" \
    -trace_stat -stf stat.csv -fd 1 > uac.out 2>&1 ) &
UAC=$!
PIDS+=($UAC)
sleep 2
kind="${KIND:-cpu}" name=profile
if [ "$kind" = heap ]; then
  name=heap; sleep "$((SECS - 2))"
  curl -sf -H "Authorization: Bearer $TOKEN" -o "$OUT/heap-$SCN.pprof" \
    "http://$HTTP/debug/pprof/heap?gc=1" || echo "profile.sh: no heap profile" >&2
else
  curl -sf -H "Authorization: Bearer $TOKEN" -o "$OUT/profile-$SCN.pprof" \
    "http://$HTTP/debug/pprof/profile?seconds=$((SECS - 2))" || echo "profile.sh: no profile" >&2
fi
for _ in $(seq 1 $((SECS * 5 + 200))); do kill -0 "$UAC" 2>/dev/null || break; sleep 0.2; done
stop_all
go tool pprof -top -nodecount 40 "$OUT/sipward" "$OUT/$name-$SCN.pprof" > "$OUT/$name-$SCN.txt" 2>/dev/null
echo "$kind profile of $SCN at $RATE/s ($((SECS - 2)) s): $OUT/$name-$SCN.txt"
