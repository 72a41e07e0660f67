#!/usr/bin/env bash
# generate.sh makes the voicemail prompts (*.wav) of this directory.
#
# Needs the Debian packages flite and sox:
#   apt-get install -y flite sox
# Run it from this directory:
#   cd internal/voicemail/prompts && ./generate.sh
#
# Every file it writes is 8000 Hz, 16-bit signed little-endian PCM, mono,
# with the canonical 44-byte RIFF header and nothing else; the script checks
# that and fails otherwise. Speech is flite's "slt" voice, resampled to
# 8 kHz, with leading and trailing silence cut down to PAD seconds and the
# peak level normalised to -3 dBFS. beep.wav is a 0.5 s 1000 Hz sine at
# -6 dBFS, made by sox itself.
set -euo pipefail

if [[ ! -f prompts.go ]]; then
	echo "generate.sh: run it from internal/voicemail/prompts" >&2
	exit 1
fi
for tool in flite sox od; do
	command -v "$tool" >/dev/null || {
		echo "generate.sh: $tool not found (apt-get install -y flite sox)" >&2
		exit 1
	}
done

VOICE=slt       # flite voice (see flite -lv)
STRETCH=0.9     # flite duration_stretch: below 1 speaks faster
PAD=0.05        # seconds of silence kept before and after speech
THRESHOLD=-45d  # level (dBFS, after norm -3) under which is silence
# -D: no dither, so the same input always gives the same bytes.
# --comment "": no comment, so sox writes no LIST chunk.
SOXOUT=(-D --comment "" -t wav -r 8000 -c 1 -b 16 -e signed-integer)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# u32 FILE OFFSET prints the little-endian 32-bit number at OFFSET.
u32() { od -A n -t u4 --endian=little -j "$2" -N 4 "$1" | tr -d ' '; }
u16() { od -A n -t u2 --endian=little -j "$2" -N 2 "$1" | tr -d ' '; }
tag() { dd if="$1" bs=1 skip="$2" count=4 status=none; }

# check FILE fails unless FILE is 8 kHz 16-bit mono PCM with a 44-byte header.
check() {
	local f=$1 size
	size=$(stat -c %s "$f")
	if [[ $(tag "$f" 0) != RIFF || $(tag "$f" 8) != WAVE ||
		$(tag "$f" 12) != "fmt " || $(u32 "$f" 16) != 16 ||
		$(u16 "$f" 20) != 1 || $(u16 "$f" 22) != 1 ||
		$(u32 "$f" 24) != 8000 || $(u16 "$f" 34) != 16 ||
		$(tag "$f" 36) != data || $(u32 "$f" 40) != $((size - 44)) ||
		$(u32 "$f" 4) != $((size - 8)) ]]; then
		echo "generate.sh: $f is not a plain 44-byte 8 kHz 16-bit mono WAV" >&2
		exit 1
	fi
}

# say NAME TEXT writes NAME.wav speaking TEXT. Silence is cut after the
# resampling: the end of an "s" above 4 kHz is gone at 8 kHz, and what is
# left of it would otherwise stay as a long quiet tail.
say() {
	local name=$1 text=$2
	flite -voice "$VOICE" --setf duration_stretch="$STRETCH" \
		-t "$text" -o "$tmp/raw.wav"
	sox "$tmp/raw.wav" "${SOXOUT[@]}" "$tmp/out.wav" \
		rate -v 8000 norm -3 \
		silence 1 0.03 "$THRESHOLD" reverse \
		silence 1 0.03 "$THRESHOLD" reverse \
		pad "$PAD" "$PAD"
	check "$tmp/out.wav"
	mv "$tmp/out.wav" "$name.wav"
}

# The beep: 0.5 s of 1000 Hz sine at -6 dBFS, with 5 ms fades against clicks.
sox -n "${SOXOUT[@]}" "$tmp/out.wav" synth 0.5 sine 1000 gain -6 fade h 0.005 0.5 0.005
check "$tmp/out.wav"
mv "$tmp/out.wav" beep.wav

while IFS='|' read -r name text; do
	[[ -z $name ]] && continue
	say "$name" "$text"
done <<'PROMPTS'
greeting|The person you are calling is not available. Please leave a message after the tone. Press the pound key when you are finished.
mailbox_full|The mailbox of the person you are calling is full. Please try again later. Goodbye.
enter_mailbox|Please enter the mailbox number, then press pound.
enter_pin|Please enter your PIN, then press pound.
wrong_pin|That PIN is not correct.
too_many_attempts|Too many failed attempts. Goodbye.
no_mailbox|There is no mailbox with that number.
you_have|You have
new_messages|new messages.
new_message|new message.
saved_messages|saved messages.
saved_message|saved message.
and|and
no_messages|You have no messages.
main_menu|Press 1 to hear new messages, 2 to hear saved messages, 3 to record your greeting, 4 to change your PIN, or star to hang up.
message_menu|Press 5 to hear it again, 7 to delete it, 9 to keep it and hear the next message, or star for the main menu.
message_from|Message from
received|received
message_deleted|Message deleted.
message_saved|Message saved.
no_more_messages|No more messages.
record_greeting|Record your greeting after the tone, then press pound.
greeting_saved|Your greeting is saved.
new_pin|Enter a new PIN of four to twelve digits, then press pound.
pin_changed|Your PIN is changed.
pin_invalid|That PIN is not valid.
goodbye|Goodbye.
invalid_choice|That is not a valid choice.
digit_0|zero
digit_1|one
digit_2|two
digit_3|three
digit_4|four
digit_5|five
digit_6|six
digit_7|seven
digit_8|eight
digit_9|nine
num_10|ten
num_11|eleven
num_12|twelve
num_13|thirteen
num_14|fourteen
num_15|fifteen
num_16|sixteen
num_17|seventeen
num_18|eighteen
num_19|nineteen
num_20|twenty
num_30|thirty
num_40|forty
num_50|fifty
num_60|sixty
num_70|seventy
num_80|eighty
num_90|ninety
num_100|hundred
PROMPTS

total=$(cat ./*.wav | wc -c)
echo "generate.sh: $(ls ./*.wav | wc -l) files, $total bytes"
