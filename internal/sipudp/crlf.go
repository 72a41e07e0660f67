package sipudp

import "bytes"

// crlf returns a datagram with every bare LF (no CR before it) that ends
// its start line or a header line made CRLF; the body is left as it is.
// RFC 3261 §7 asks for CRLF and sipgo's parser takes nothing else, but
// LF-only senders exist and are read as they meant (package siptcp does the
// same for streams). It allocates only when there is a bare LF to rewrite.
func crlf(data []byte) []byte {
	end, bare := headerEnd(data)
	if bare == 0 {
		return data
	}
	out := make([]byte, 0, len(data)+bare)
	for i := 0; i < end; i++ {
		if data[i] == '\n' && (i == 0 || data[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, data[i])
	}
	return append(out, data[end:]...)
}

// headerEnd returns where the body of a datagram begins (just past the
// first empty line, or len(data) if none) and how many bare LFs come
// before it.
func headerEnd(data []byte) (end, bare int) {
	for i := 0; ; i++ {
		j := bytes.IndexByte(data[i:], '\n')
		if j < 0 {
			return len(data), bare
		}
		i += j
		if i == 0 || data[i-1] != '\r' {
			bare++
		}
		// An empty line: this LF is followed by LF, or by CRLF.
		switch {
		case i+1 < len(data) && data[i+1] == '\n':
			return i + 2, bare + 1
		case i+2 < len(data) && data[i+1] == '\r' && data[i+2] == '\n':
			return i + 3, bare
		}
	}
}
