package sipudp

// crlf returns a datagram with every bare LF (no CR before it) that ends
// its start line or a header line made CRLF; the body is left as it is.
// RFC 3261 §7 asks for CRLF and sipgo's parser takes nothing else, but
// LF-only senders exist and are read as they meant (package siptcp does the
// same for streams). It allocates only when there is a bare LF to rewrite.
func crlf(data []byte) []byte {
	end := headerEnd(data)
	bare := 0
	for i := 0; i < end; i++ {
		if data[i] == '\n' && (i == 0 || data[i-1] != '\r') {
			bare++
		}
	}
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

// headerEnd returns where the body of a datagram begins: just past the
// first empty line (LF or CRLF after a line's LF), or len(data) if none.
func headerEnd(data []byte) int {
	for i := 0; i+1 < len(data); i++ {
		if data[i] != '\n' {
			continue
		}
		if data[i+1] == '\n' {
			return i + 2
		}
		if data[i+1] == '\r' && i+2 < len(data) && data[i+2] == '\n' {
			return i + 3
		}
	}
	return len(data)
}
