#!/bin/bash
# baresip leaves a voicemail message and hears it back, through a real
# sipward. Not part of `make test` (it needs Debian's baresip-core and takes
# about a minute); run it by hand after a change to voicemail:
#
#   apt-get install -y baresip-core && go build -o /tmp/sipward ./cmd/sipward
#   test/softphone/baresip-voicemail.sh /tmp/sipward
#
# Phone A (3002) calls 3001, who is not registered: the mailbox answers, A
# plays a 440 Hz tone (baresip's aufile source) and hangs up. Phone B
# (3001) registers, subscribes to message-summary (baresip's mwi module),
# dials *1, sends its PIN and 1 as RFC 4733 events (/sndcode), records what
# it hears (sndfile) and deletes the message with 7. The script checks the
# stored message and B's recording for the tone, and prints the NOTIFYs B got.
set -euo pipefail
SW=${1:?usage: $0 path/to/sipward}
W=$(mktemp -d /tmp/baresip-vm.XXXX)
export SIPWARD_SERVER=http://127.0.0.1:18080 SIPWARD_TOKEN=bs-admin-token-123456
cleanup() { kill "$(cat "$W/sw.pid" 2>/dev/null)" 2>/dev/null || true; }
trap cleanup EXIT

python3 - "$W" <<'PY'
import math, struct, sys, wave
def write(path, samples):
    w = wave.open(path, 'wb'); w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
    w.writeframes(b''.join(struct.pack('<h', s) for s in samples)); w.close()
write(sys.argv[1] + '/tone.wav', [int(12000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(8000 * 20)])
write(sys.argv[1] + '/silence.wav', [0] * (8000 * 60))
PY
cat > "$W/tone.py" <<'PY'
import math, struct, sys, wave
w = wave.open(sys.argv[1]); ch = w.getnchannels(); rate = w.getframerate()
data = w.readframes(w.getnframes()); x = struct.unpack('<%dh' % (len(data) // 2), data)[::ch]
c = 2 * math.cos(2 * math.pi * 440 / rate); win = rate // 10; hits = 0
for i in range(0, len(x) - win, win):
    s1 = s2 = e = 0.0
    for v in x[i:i + win]:
        s0 = v + c * s1 - s2; s2, s1 = s1, s0; e += v * v
    if e >= win * 100 * 100 and (s1 * s1 + s2 * s2 - c * s1 * s2) / (win / 2 * e) > 0.6:
        hits += 1
print(f"{sys.argv[1]}: {len(x) / rate:.1f} s, {hits / 10:.1f} s of it a 440 Hz tone")
sys.exit(0 if hits >= 20 else 1)
PY

"$SW" serve --http-addr 127.0.0.1:18080 --sip-addr 127.0.0.1:15060 --db "sqlite:$W/db" --key-file "$W/k" \
  --admin-token "$SIPWARD_TOKEN" --realm bs.test > "$W/sipward.log" 2>&1 &
echo $! > "$W/sw.pid"
sleep 2
"$SW" account create name=Baresip -o json > /dev/null
"$SW" user create --account 1 username=3001 password=alice-pass-1234 'voicemail={"enabled":true,"pin":"2468"}' -o json > /dev/null
"$SW" user create --account 1 username=3002 password=bob-pass-12345 -o json > /dev/null
sleep 1 # the nodes take up configuration within about 200 ms

phone() { # dir ip port cons-port account-line source-wav extra-modules
  mkdir -p "$1/snd"
  cat > "$1/config" <<CFG
poll_method epoll
sip_listen $2:$3
audio_player aufile,/dev/null
audio_source aufile,$6
audio_alert aufile,/dev/null
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module cons.so
module sndfile.so
module_app account.so
module_app menu.so
$7
cons_listen $2:$4
snd_path $1/snd
CFG
  echo "$5" > "$1/accounts"
}
phone "$W/a" 127.0.0.31 5070 5555 '<sip:3002@127.0.0.1:15060>;auth_pass=bob-pass-12345;regint=0;outbound="sip:127.0.0.1:15060"' "$W/tone.wav" ""
phone "$W/b" 127.0.0.32 5072 5556 '<sip:3001@127.0.0.1:15060>;auth_pass=alice-pass-1234;regint=300;outbound="sip:127.0.0.1:15060"' "$W/silence.wav" "module_app mwi.so"

echo "== A (3002) calls 3001 and leaves a message"
timeout 40 baresip -f "$W/a" -e "/dial sip:3001@127.0.0.1:15060" -t 25 > "$W/a.log" 2>&1 || true
"$SW" voicemail list --user 1
curl -sf -H "Authorization: Bearer $SIPWARD_TOKEN" "$SIPWARD_SERVER/api/v1/sip-users/1/voicemail/messages/1/audio" -o "$W/stored.wav"
python3 "$W/tone.py" "$W/stored.wav"

echo "== B (3001) dials *1, keys 2468# then 1, hears the message, deletes it with 7"
(sleep 4; python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for cmd, wait in ((b"/sndcode 2468#\n", 4), (b"/sndcode 1\n", 19), (b"/sndcode 7\n", 0)):
    s.sendto(cmd, ("127.0.0.32", 5556)); time.sleep(wait)') &
timeout 45 baresip -f "$W/b" -e "/dial sip:*1@127.0.0.1:15060" -t 35 > "$W/b.log" 2>&1 || true
grep -a "Voice-Message" "$W/b.log" | sed 's/^/B got NOTIFY: /'
python3 "$W/tone.py" "$W"/b/snd/*-dec.wav
test "$("$SW" voicemail list --user 1 -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')" = 0
echo "== PASS: the message was stored, heard back by baresip, and deleted ($W)"
