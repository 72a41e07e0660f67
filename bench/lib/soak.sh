#!/bin/bash
# soak.sh -- memory and goroutines of sipward under a steady load, from its /metrics.
#
#   soak.sh OUT PEERCOPY SCENARIO RATE SECONDS SIP_PORT UAS_PORT USERS_CSV -- SIPWARD COMMAND...
#
# Starts the sipward command (listening on 127.0.0.1:SIP_PORT, --http-addr 127.0.0.1:0) and
# the harness's UAS, runs the harness's UAC for SCENARIO at RATE/s for SECONDS, samples
# go_memstats_heap_inuse_bytes, go_goroutines and process_resident_memory_bytes every 10 s,
# then, after the calls ended, sipward_edge_active_calls (0 = every call and its channels freed). Writes
# OUT/soak-SCENARIO.tsv and prints first-minute vs last-minute figures. Everything it starts
# is stopped by PID; the load is bounded (sipp -m, -timeout).
set -uo pipefail
OUT="$1" PEER="$2" SCN="$3" RATE="$4" SECS="$5" SIP_PORT="$6" UAS_PORT="$7" USERS="$8"
shift 8; [ "${1:-}" = -- ] && shift
D="$OUT/soak-$SCN"; mkdir -p "$D"
. "$(dirname "${BASH_SOURCE[0]}")/load.sh"
start_sipward soak.sh "$@"
start_uas "$((SECS + 90))"
uac_args soak.sh "$SCN"
( cd "$D" && exec sipp "127.0.0.1:$SIP_PORT" "${args[@]}" -bind_local -t u1 -s 1000 -d 1000 -r "$RATE" -rp 1000 \
    -m "$((RATE * SECS))" -nostdin -buff_size 4194304 -recv_timeout 8000 -timeout "$((SECS + 60))s" \
    -trace_stat -stf stat.csv -fd 10 > uac.out 2>&1 ) &
UAC=$!
PIDS+=($UAC)
printf 't_s\theap_inuse_MB\tgoroutines\trss_MB\n' > "$OUT/soak-$SCN.tsv"
t0=$SECONDS
while kill -0 "$UAC" 2>/dev/null && [ $((SECONDS - t0)) -le $((SECS + 60)) ]; do
  if curl -sf -o "$D/m.txt" "http://$HTTP/metrics"; then
    awk -v t=$((SECONDS - t0)) '$1 == "go_memstats_heap_inuse_bytes" {h = $2} $1 == "go_goroutines" {g = $2}
      $1 == "process_resident_memory_bytes" {r = $2}
      END {printf "%d\t%.1f\t%d\t%.1f\n", t, h / 1048576, g, r / 1048576}' "$D/m.txt" >> "$OUT/soak-$SCN.tsv"
  fi
  sleep 10
done
sleep 5
curl -sf "http://$HTTP/metrics" | grep -E '^sipward_(edge_active_calls|registrar_bindings) ' > "$OUT/soak-$SCN-end-metrics.txt"
stat="$(tail -1 "$D/stat.csv" 2>/dev/null)"
hdr="$(head -1 "$D/stat.csv" 2>/dev/null)"
python3 - "$OUT/soak-$SCN.tsv" "$hdr" "$stat" <<'PY'
import sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n")[1:] if l]
h, s = sys.argv[2].split(";"), sys.argv[3].split(";")
st = dict(zip(h, s))
first = [r for r in rows if 60 <= int(r[0]) < 120] or rows[:1]
last = rows[-6:]
def avg(rs, i): return sum(float(r[i]) for r in rs) / len(rs) if rs else float("nan")
print("soak: calls %s ok / %s failed; heap in use %.1f MB (minute 2) -> %.1f MB (last minute); "
      "goroutines %.0f -> %.0f; RSS %.1f -> %.1f MB" % (st.get("SuccessfulCall(C)", "?"), st.get("FailedCall(C)", "?"),
      avg(first, 1), avg(last, 1), avg(first, 2), avg(last, 2), avg(first, 3), avg(last, 3)))
PY
echo "after the load (active calls should be 0):"; cat "$OUT/soak-$SCN-end-metrics.txt"
