#!/bin/bash
# perf.sh -- a perf profile of sipward under SIPp load: the whole process, kernel included.
#
#   perf.sh OUT PEERCOPY SCENARIO RATE SECONDS SIP_PORT UAS_PORT USERS_CSV -- SIPWARD COMMAND...
#
# Why not only /debug/pprof (profile.sh): on this kind of VM Go's profiler sampled about a quarter
# of the process's on-CPU time (1.6 of 5.4 s at 1,000 digest calls/s, schedstat), and it cannot
# see the kernel's side of the system calls, wake-ups and context switches, which were a third of
# it. perf (Debian package linux-perf; cpu-clock sampling, no PMU needed) sees both.
#
# Starts the sipward command (it must listen on 127.0.0.1:SIP_PORT with --http-addr 127.0.0.1:0)
# and the harness's UAS, runs the harness's UAC for SCENARIO at RATE/s for 2 x SECONDS (+ 4 s), reads
# the process's on-CPU time (schedstat of every thread) over SECONDS from the third second, then
# records it with `perf record -F 2000 -g` over the next SECONDS (perf's sampling is charged to the
# process: the CPU figure is taken before it starts), and writes OUT/perf-SCENARIO.data,
# OUT/perf-SCENARIO.txt (self time by symbol), OUT/perf-SCENARIO-children.txt (time including
# callees) and OUT/perf-SCENARIO-cpu.txt (on-CPU seconds per 1,000 calls). Everything it starts is
# stopped by PID; loads are bounded.
set -uo pipefail
OUT="$1" PEER="$2" SCN="$3" RATE="$4" SECS="$5" SIP_PORT="$6" UAS_PORT="$7" USERS="$8"
shift 8; [ "${1:-}" = -- ] && shift
command -v perf >/dev/null || { echo "perf.sh: perf not found (apt-get install linux-perf)" >&2; exit 2; }
D="$OUT/perf-$SCN"; mkdir -p "$D"
. "$(dirname "${BASH_SOURCE[0]}")/load.sh"
start_sipward perf.sh "$@"
SPID=${PIDS[0]}
start_uas "$((2 * SECS + 60))"
uac_args perf.sh "$SCN"
( cd "$D" && exec sipp "127.0.0.1:$SIP_PORT" "${args[@]}" -bind_local -t u1 -s 1000 -d 1000 -r "$RATE" -rp 1000 \
    -m "$((RATE * (2 * SECS + 4)))" -nostdin -buff_size 4194304 -recv_timeout 8000 -timeout "$((2 * SECS + 40))s" \
    -fd 1 > uac.out 2>&1 ) &
UAC=$!
PIDS+=($UAC)
sleep 3
oncpu() { cat /proc/"$SPID"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {print s}'; }
a=$(oncpu)
sleep "$SECS"
b=$(oncpu)
perf record -F 2000 -g -p "$SPID" -o "$OUT/perf-$SCN.data" -- sleep "$SECS" > /dev/null 2>&1
for _ in $(seq 1 $((SECS * 10 + 200))); do kill -0 "$UAC" 2>/dev/null || break; sleep 0.2; done
stop_all
perf report -i "$OUT/perf-$SCN.data" --no-children --sort sym --stdio -g none 2>/dev/null \
  | grep '%' | head -60 > "$OUT/perf-$SCN.txt"
perf report -i "$OUT/perf-$SCN.data" --children --sort sym --stdio -g none 2>/dev/null \
  | grep '%' | head -120 > "$OUT/perf-$SCN-children.txt"
grep -E "Successful call|Failed call" "$D/uac.out" | tail -2
python3 -c "d=($b-$a)/1e9; print(f'on-CPU {d:.2f} s over $SECS s at $RATE/s: {d/($RATE*$SECS)*1000:.3f} s per 1,000 calls')" \
  | tee "$OUT/perf-$SCN-cpu.txt"
echo "perf profile of $SCN at $RATE/s over $SECS s: $OUT/perf-$SCN.txt, $OUT/perf-$SCN-children.txt"
