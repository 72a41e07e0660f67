package voicemail

// A call's media, as the dialogues need it: one goroutine reads the
// caller's RTP (keys pressed, and while recording the decoded audio);
// prompts play from the dialogue's goroutine and stop when a key is
// pressed.

import (
	"bytes"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/audio"
	"github.com/emiago/diago/media"

	"github.com/sipward/sipward/internal/voicemail/prompts"
	"github.com/sipward/sipward/internal/wavfile"
)

// session is an answered call's media.
type session struct {
	med   *diago.DialogMedia
	codec media.Codec

	keys    chan rune     // keys pressed, in order
	pressed chan struct{} // a key was pressed (stops a prompt)
	frames  chan []byte   // decoded 20 ms frames, while recording
	gone    chan struct{} // closed when the caller's media ended (hang-up)
	rec     atomic.Bool   // frames wanted
	gaps    atomic.Int64  // packets missing while recording
}

func newSession(med *diago.DialogMedia) *session {
	s := &session{med: med, codec: media.CodecAudioFromSession(med.MediaSession()),
		keys: make(chan rune, 32), pressed: make(chan struct{}, 1),
		frames: make(chan []byte, 256), gone: make(chan struct{})}
	go s.read()
	return s
}

// read reads the caller's RTP until the call ends: telephone-events become
// keys, audio frames (decoded) go to frames while recording; a gap in the
// sequence numbers is filled with silence so a recording keeps its length.
func (s *session) read() {
	defer close(s.gone)
	var r io.Reader
	if dr, err := s.med.AudioReaderDTMF(); err == nil {
		dr.OnDTMF(func(k rune) error { s.key(k); return nil })
		r = dr
	} else if r, err = s.med.AudioReader(); err != nil {
		return
	}
	pr := s.med.RTPPacketReader
	buf := make([]byte, media.RTPBufSize)
	var last uint16
	started := false
	for {
		n, err := r.Read(buf)
		if err != nil {
			return
		}
		hdr := pr.PacketHeader
		if n == 0 || hdr.PayloadType != s.codec.PayloadType {
			continue
		}
		if started && s.rec.Load() {
			for gap := hdr.SequenceNumber - last - 1; gap > 0 && gap < 50; gap-- {
				s.gaps.Add(1)
				s.frame(make([]byte, 2*n))
			}
		}
		last, started = hdr.SequenceNumber, true
		if s.rec.Load() {
			s.frame(s.decode(buf[:n]))
		}
	}
}

func (s *session) key(k rune) {
	select {
	case s.keys <- k:
	default: // 32 keys unread: the caller is pressing at random
	}
	select {
	case s.pressed <- struct{}{}:
	default:
	}
}

func (s *session) frame(pcm []byte) {
	select {
	case s.frames <- pcm:
	default: // the recorder stopped reading: the deposit is ending
	}
}

func (s *session) decode(payload []byte) []byte {
	pcm := make([]byte, 2*len(payload))
	if s.codec.PayloadType == media.CodecAudioAlaw.PayloadType {
		_, _ = audio.DecodeAlawTo(pcm, payload)
	} else {
		_, _ = audio.DecodeUlawTo(pcm, payload)
	}
	return pcm
}

// errHangup: the caller hung up.
var errHangup = errors.New("caller hung up")

// play plays WAV files in order; a key pressed stops it (the key stays to
// be read) unless keys is false.
func (s *session) play(keys bool, wavs ...[]byte) error {
	for _, w := range wavs {
		if keys {
			// A key already read (the menu's choice) left its signal: it must
			// not stop this prompt. key() queues the key before signalling, so
			// a key that came meanwhile is seen below.
			select {
			case <-s.pressed:
			default:
			}
			if len(s.keys) > 0 {
				return nil
			}
		}
		pb, err := s.med.PlaybackControlCreate()
		if err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { _, err := pb.Play(bytes.NewReader(w), "audio/wav"); done <- err }()
		pressed := s.pressed
		if !keys {
			pressed = nil
		}
		select {
		case err := <-done:
			if err != nil {
				return err
			}
		case <-pressed:
			pb.Stop()
			<-done
			return nil
		case <-s.gone:
			pb.Stop()
			<-done
			return errHangup
		}
	}
	return nil
}

// say plays named prompts; a key stops them.
func (s *session) say(names ...string) error {
	wavs := make([][]byte, len(names))
	for i, n := range names {
		wavs[i] = prompts.Get(n)
	}
	return s.play(true, wavs...)
}

// collect reads keys up to #, at most max of them: first within wait,
// then each within 5 s of the last. ok is false when nothing was keyed.
func (s *session) collect(max int, wait time.Duration) (string, bool, error) {
	var got []rune
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case k := <-s.keys:
			if k == '#' {
				return string(got), len(got) > 0, nil
			}
			got = append(got, k)
			if len(got) >= max {
				return string(got), true, nil
			}
			t.Reset(5 * time.Second)
		case <-t.C:
			return string(got), len(got) > 0, nil
		case <-s.gone:
			return "", false, errHangup
		}
	}
}

// choice waits up to wait for one key.
func (s *session) choice(wait time.Duration) (rune, error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case k := <-s.keys:
		return k, nil
	case <-t.C:
		return 0, nil
	case <-s.gone:
		return 0, errHangup
	}
}

// clearKeys forgets keys pressed so far.
func (s *session) clearKeys() {
	for {
		select {
		case <-s.keys:
		default:
			return
		}
	}
}

// recording is what record kept and why it stopped.
type recording struct {
	pcm []byte
	end string // "hangup", "#", "silence", "max length"
}

// record keeps the caller's audio until hang-up, #, silence (when silence
// > 0: no frame louder than the floor for that long, or no audio at all)
// or max. A recording ended by silence is cut after its last sound.
func (s *session) record(max, silence time.Duration) recording {
	s.clearKeys()
	for len(s.frames) > 0 {
		<-s.frames
	}
	s.rec.Store(true)
	defer s.rec.Store(false)
	var out []byte
	limit := time.NewTimer(max)
	defer limit.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	heard, sound := time.Now(), 0 // when the last sound came, and where it ends in out
	for {
		select {
		case f := <-s.frames:
			out = append(out, f...)
			if !quiet(f) {
				heard, sound = time.Now(), len(out)
			}
			if wavfile.Duration(out) >= max {
				return recording{out, "max length"}
			}
		case <-tick.C:
			if silence > 0 && time.Since(heard) >= silence {
				return recording{out[:sound], "silence"}
			}
		case k := <-s.keys:
			if k == '#' {
				return recording{out, "#"}
			}
		case <-limit.C:
			return recording{out, "max length"}
		case <-s.gone:
			for len(s.frames) > 0 {
				out = append(out, <-s.frames...)
			}
			return recording{out, "hangup"}
		}
	}
}

// quiet reports whether a frame of 16-bit samples is silence: its RMS is
// below 200 (about -44 dBFS; line noise and comfort noise stay below it,
// speech does not).
func quiet(pcm []byte) bool {
	n := len(pcm) / 2
	if n == 0 {
		return true
	}
	var sum float64
	for i := 0; i < 2*n; i += 2 {
		v := float64(int16(uint16(pcm[i]) | uint16(pcm[i+1])<<8))
		sum += v * v
	}
	return sum/float64(n) < 200*200
}
