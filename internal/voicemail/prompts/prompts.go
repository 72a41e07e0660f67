// Package prompts holds the spoken prompts of the voicemail system: the
// greeting played to callers, the menus and messages of the mailbox owner's
// session, the beep before recording, and the words needed to say numbers
// from 0 to 999. They are embedded in the binary, so nothing is fetched at
// run time.
//
// The WAV files beside this source were made once by generate.sh, in this
// directory, with the flite speech synthesizer (voice "slt") and sox; the
// beep is a sox-made 0.5 s 1000 Hz sine at -6 dBFS. Running generate.sh
// again needs the Debian packages flite and sox (apt-get install -y flite
// sox) and is done from this directory: cd internal/voicemail/prompts &&
// ./generate.sh. It rewrites every file, byte for byte the same for the same
// flite and sox versions.
//
// Every file is 8000 Hz, 16-bit signed little-endian linear PCM, mono, with
// the canonical 44-byte RIFF header (RIFF, fmt of 16 bytes, data) and no
// other chunk, so the samples are the bytes from offset 44 to the end. Speech
// is peak-normalised to -3 dBFS, with at most about 0.05 s of silence before
// and after it.
package prompts

import (
	"embed"
	"fmt"
)

//go:embed *.wav
var files embed.FS

// Names of the prompts, for Get. Digits and numbers are named by Number.
const (
	Greeting        = "greeting"          // caller: owner not available, leave a message
	MailboxFull     = "mailbox_full"      // caller: mailbox full, goodbye
	EnterMailbox    = "enter_mailbox"     // "Please enter the mailbox number, then press pound."
	EnterPIN        = "enter_pin"         // "Please enter your PIN, then press pound."
	WrongPIN        = "wrong_pin"         // "That PIN is not correct."
	TooManyAttempts = "too_many_attempts" // "Too many failed attempts. Goodbye."
	NoMailbox       = "no_mailbox"        // "There is no mailbox with that number."
	YouHave         = "you_have"          // "You have"
	NewMessages     = "new_messages"      // "new messages."
	NewMessage      = "new_message"       // "new message."
	SavedMessages   = "saved_messages"    // "saved messages."
	SavedMessage    = "saved_message"     // "saved message."
	And             = "and"               // "and"
	NoMessages      = "no_messages"       // "You have no messages."
	MainMenu        = "main_menu"         // 1 new, 2 saved, 3 greeting, 4 PIN, star hang up
	MessageMenu     = "message_menu"      // 5 repeat, 7 delete, 9 keep and next, star main menu
	MessageFrom     = "message_from"      // "Message from"
	Received        = "received"          // "received"
	MessageDeleted  = "message_deleted"   // "Message deleted."
	MessageSaved    = "message_saved"     // "Message saved."
	NoMoreMessages  = "no_more_messages"  // "No more messages."
	RecordGreeting  = "record_greeting"   // "Record your greeting after the tone, then press pound."
	GreetingSaved   = "greeting_saved"    // "Your greeting is saved."
	NewPIN          = "new_pin"           // "Enter a new PIN of four to ten digits, then press pound."
	PINChanged      = "pin_changed"       // "Your PIN is changed."
	PINInvalid      = "pin_invalid"       // "That PIN is not valid."
	Goodbye         = "goodbye"           // "Goodbye."
	InvalidChoice   = "invalid_choice"    // "That is not a valid choice."
	Beep            = "beep"              // 0.5 s 1000 Hz tone before recording
)

// Get returns the named prompt's WAV file (the whole file, header included); it panics on an unknown name (names are constants of this package).
// The slice is the caller's own copy.
func Get(name string) []byte {
	b, err := files.ReadFile(name + ".wav")
	if err != nil {
		panic(fmt.Sprintf("prompts: unknown prompt %q", name))
	}
	return b
}

// Number returns the prompts that say n (0 ≤ n ≤ 999) in order, e.g. 25 → ["num_20","digit_5"], 7 → ["digit_7"], 100 → ["digit_1","num_100"], 342 → ["digit_3","num_100","num_40","digit_2"].
// It panics when n is out of that range.
func Number(n int) []string {
	if n < 0 || n > 999 {
		panic(fmt.Sprintf("prompts: Number(%d) out of range 0..999", n))
	}
	if n == 0 {
		return []string{digit(0)}
	}
	var out []string
	if h := n / 100; h > 0 {
		out = append(out, digit(h), "num_100")
	}
	switch r := n % 100; {
	case r == 0:
	case r < 10:
		out = append(out, digit(r))
	case r <= 20:
		out = append(out, fmt.Sprintf("num_%d", r))
	default:
		out = append(out, fmt.Sprintf("num_%d", r/10*10))
		if r%10 > 0 {
			out = append(out, digit(r%10))
		}
	}
	return out
}

func digit(d int) string { return fmt.Sprintf("digit_%d", d) }
