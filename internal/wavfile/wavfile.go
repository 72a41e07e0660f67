// Package wavfile reads and writes the one audio format voicemail keeps:
// WAV files of 8 kHz, 16-bit, mono, little-endian PCM — what G.711 decodes
// to, what the prompts are, and what browsers and mail clients play.
package wavfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Format of every file: 8,000 samples a second, 2 bytes each, one channel.
const (
	SampleRate     = 8000
	BytesPerSample = 2
	headerSize     = 44
)

// Encode returns pcm (16-bit little-endian samples) as a WAV file with the
// canonical 44-byte header.
func Encode(pcm []byte) []byte {
	b := make([]byte, headerSize, headerSize+len(pcm))
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+len(pcm)))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16) // fmt chunk size
	binary.LittleEndian.PutUint16(b[20:], 1)  // PCM
	binary.LittleEndian.PutUint16(b[22:], 1)  // mono
	binary.LittleEndian.PutUint32(b[24:], SampleRate)
	binary.LittleEndian.PutUint32(b[28:], SampleRate*BytesPerSample)
	binary.LittleEndian.PutUint16(b[32:], BytesPerSample)
	binary.LittleEndian.PutUint16(b[34:], 8*BytesPerSample)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(len(pcm)))
	return append(b, pcm...)
}

// Duration is how long pcm plays.
func Duration(pcm []byte) time.Duration {
	return time.Duration(len(pcm)/BytesPerSample) * time.Second / SampleRate
}

// Parse checks that b is a WAV file of this package's format and returns
// its samples. Chunks other than fmt and data (LIST, fact …) are skipped.
// The error says what is wrong: "wav: 44100 Hz: must be 8000 Hz".
func Parse(b []byte) ([]byte, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, errors.New("wav: not a RIFF/WAVE file")
	}
	var fmtSeen bool
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:]))
		body := b[p+8:]
		if size > len(body) {
			if id != "data" {
				return nil, fmt.Errorf("wav: chunk %q is cut short", id)
			}
			size = len(body) // a streamed file's data size may be unset
		}
		switch id {
		case "fmt ":
			if err := checkFormat(body[:size]); err != nil {
				return nil, err
			}
			fmtSeen = true
		case "data":
			if !fmtSeen {
				return nil, errors.New("wav: data before its fmt chunk")
			}
			return body[:size&^1], nil
		}
		p += 8 + size + size&1 // chunks are padded to an even size
	}
	return nil, errors.New("wav: no data chunk")
}

func checkFormat(f []byte) error {
	if len(f) < 16 {
		return errors.New("wav: fmt chunk too short")
	}
	if tag := binary.LittleEndian.Uint16(f[0:]); tag != 1 && tag != 0xFFFE {
		return fmt.Errorf("wav: encoding %d: must be PCM (1)", tag)
	}
	if ch := binary.LittleEndian.Uint16(f[2:]); ch != 1 {
		return fmt.Errorf("wav: %d channels: must be mono", ch)
	}
	if rate := binary.LittleEndian.Uint32(f[4:]); rate != SampleRate {
		return fmt.Errorf("wav: %d Hz: must be %d Hz", rate, SampleRate)
	}
	if bits := binary.LittleEndian.Uint16(f[14:]); bits != 8*BytesPerSample {
		return fmt.Errorf("wav: %d-bit samples: must be 16-bit", bits)
	}
	return nil
}
