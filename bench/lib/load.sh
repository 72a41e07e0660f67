# load.sh -- sourced by profile.sh and soak.sh: start sipward and the harness's SIPp UAS, and the
# UAC arguments of a scenario. Expects PIDS (an array), PEER, SIP_PORT, UAS_PORT, USERS and D (the
# run's directory) to be set; every process it starts is added to PIDS for the caller's stop_all.

PIDS=()
stop_all() { local p; for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
             for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done; PIDS=(); }
trap 'stop_all' EXIT
trap 'exit 130' INT TERM

# start_sipward NAME COMMAND...: runs COMMAND (logging to $D/sipward.log) and sets HTTP to the address
# of its HTTP listener once it serves; exits when it does not start.
start_sipward() {
  local name="$1"; shift
  "$@" > "$D/sipward.log" 2>&1 &
  PIDS+=($!)
  HTTP=""
  for _ in $(seq 1 100); do
    HTTP="$(sed -n 's/.*msg="sipward serving" http=\([^ ]*\) sip=.*/\1/p' "$D/sipward.log")"
    [ -n "$HTTP" ] && break; sleep 0.2
  done
  [ -n "$HTTP" ] || { echo "$name: sipward did not start (see $D/sipward.log)" >&2; exit 1; }
}

# start_uas TIMEOUT_S: the harness's UAS on 127.0.0.1:UAS_PORT, bounded in time.
start_uas() {
  ( cd "$D" && exec sipp -sf "$PEER/sipp/uas.xml" -i 127.0.0.1 -p "$UAS_PORT" -bind_local -t u1 -nostdin \
      -buff_size 4194304 -timeout "$1s" > uas.out 2>&1 ) &
  PIDS+=($!)
  sleep 1
}

# uac_args NAME SCENARIO: sets the array args to the UAC's scenario, source and users.
uac_args() {
  case "$2" in
    ipauth) args=(-sf "$PEER/sipp/uac_ipauth.xml" -i 127.0.0.2 -p 15062);;
    digest) args=(-sf "$PEER/sipp/uac_digest.xml" -i 127.0.0.3 -p 15063 -inf "$USERS" -auth_uri "1000@127.0.0.1:$SIP_PORT");;
    reg)    args=(-sf "$PEER/sipp/reg_digest.xml" -i 127.0.0.3 -p 15063 -inf "$USERS");;
    *) echo "$1: unknown scenario $2" >&2; exit 2;;
  esac
}
