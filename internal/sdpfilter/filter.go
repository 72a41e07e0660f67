// Package sdpfilter removes an IP endpoint's or SIP user's restricted
// codecs from a session description (RFC 4566), and checks that a stream
// uses SRTP when the endpoint must. It is a leaf both sides of a call use:
// the codecs stage filters the caller's offer, and the B2BUA filters the
// answers and re-offers that come back (Filter). When the B2BUA moves a
// call's media to a new party (a transfer) it makes the new offer sendrecv
// (SendRecv) and keeps the staying party's session origin (Reorigin).
//
// Filter works line by line on the SDP bytes, keeping everything it does
// not remove byte for byte, and does not allocate unless it changes
// something.
package sdpfilter

import "bytes"

// Outcome says what Filter did to a session description.
type Outcome uint8

// Outcomes of Filter. Only Changed returns a new slice; every other outcome
// returns the input as is.
const (
	// Unchanged: nothing to enforce, or nothing restricted was offered and
	// SRTP, if required, is there. Returned without allocating.
	Unchanged Outcome = iota
	// Changed: restricted formats were removed; the output is the filtered
	// SDP, with CRLF line endings.
	Changed
	// NothingLeft: an audio stream would keep no codec but telephone-event
	// or comfort noise (or no stream at all would keep a codec). The caller
	// answers 488 Not Acceptable Here.
	NothingLeft
	// NoSRTP: SRTP is required and an audio stream offers plain RTP: its
	// proto is not …/SAVP or …/SAVPF and it has no a=crypto line. The
	// caller answers 488 Not Acceptable Here.
	NoSRTP
	// Malformed: the body is not SDP Filter can read (see Filter). The
	// codecs stage passes it on unchanged.
	Malformed
	numOutcomes
)

// Outcomes lists every Outcome, in order (for metric labels).
var Outcomes = [numOutcomes]Outcome{Unchanged, Changed, NothingLeft, NoSRTP, Malformed}

var outcomeNames = [numOutcomes]string{
	Unchanged:   "unchanged",
	Changed:     "changed",
	NothingLeft: "nothing_left",
	NoSRTP:      "no_srtp",
	Malformed:   "malformed",
}

// String returns the outcome in snake case, as in the outcome label of
// sipward_codecs_filtered_total.
func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return "unknown"
}

// Filter removes the restricted codecs from an SDP offer or answer.
//
// In every m= line with a non-zero port, it removes the payload formats of
// restricted codecs: static payload types by their RFC 3551 number (0 PCMU,
// 3 GSM, 4 G723, 8 PCMA, 9 G722, 15 G728, 18 G729, 31 H261, 34 H263) unless
// an a=rtpmap line names them otherwise, dynamic ones by the encoding name
// of their a=rtpmap line (case-insensitive; G729A counts as G729), and, in
// a non-RTP stream such as "m=image 0 udptl t38", formats by name. With a
// format go its a=rtpmap, a=fmtp and a=rtcp-fb lines, and the formats that
// depend on it: an rtx format whose apt= names it and a red format that
// lists it. telephone-event goes only when it is restricted itself.
//
// A non-audio stream left without a codec is declined by setting its port
// to 0 (RFC 3264 §6), with the rest of its m= section unchanged. An audio
// stream left with no codec but telephone-event, comfort noise or other
// auxiliary formats (red, rtx, FEC), or all streams declined, gives
// NothingLeft. Streams with port 0 are left alone.
//
// With requireSRTP, every audio stream with a non-zero port must be SRTP:
// proto RTP/SAVP or RTP/SAVPF (or another …/SAVP(F), as UDP/TLS/RTP/SAVPF
// for DTLS-SRTP), or an a=crypto line (SDES, RFC 4568). Otherwise NoSRTP.
//
// Everything else is kept byte for byte: line order, unknown attributes,
// session-level lines. Lines may end in CRLF or LF; a Changed output ends
// every line in CRLF. The m= line of a filtered stream is rebuilt with its
// remaining formats separated by single spaces.
//
// Filter reads only what it needs to decide, and calls Malformed only SDP
// it cannot decide on: a first line that is not v=, a non-empty line that
// is not <letter>=<value> or holds a CR, an m= line without media, port,
// proto and at least one format, a port over 65535, or an RTP format that
// is not a payload type 0-127. It never panics.
//
// Only Changed returns a new slice; every other outcome returns sdp itself.
// With an empty set and requireSRTP false, Filter returns Unchanged at once
// without reading sdp. Unchanged allocates nothing; Changed allocates the
// output once.
//
// Answers. The B2BUA filters the SDP answer coming back from the far end
// with the same Set and requireSRTP as the offer: Changed → relay the
// filtered answer; NothingLeft or NoSRTP in a 2xx → ACK and BYE that leg and
// answer the caller 488 (a far end that picks a codec it was not offered,
// or drops SRTP, broke the offer/answer model). For a late offer (INVITE
// without SDP), the offer arrives in the far end's 2xx and is filtered the
// same way before it is relayed.
func Filter(sdp []byte, restricted Set, requireSRTP bool) (out []byte, res Outcome) {
	out, rep := filter(sdp, restricted, requireSRTP)
	return out, rep.outcome
}

// Report is what Inspect found: the Outcome, and what the decision log
// says about it.
type Report struct {
	Outcome Outcome
	Removed Set    // restricted codecs found in live streams
	Stream  int    // NothingLeft, NoSRTP: 1-based index of the m= line at fault (0: all streams)
	Proto   []byte // NoSRTP: proto of that stream (a slice of the input)
}

// Inspect is Filter with the details of what it found.
func Inspect(sdp []byte, restricted Set, requireSRTP bool) ([]byte, Report) {
	out, rep := filter(sdp, restricted, requireSRTP)
	return out, Report{Outcome: rep.outcome, Removed: rep.removed, Stream: rep.stream, Proto: rep.proto}
}

// report is what filter found.
type report struct {
	outcome Outcome
	removed Set    // restricted codecs found in live streams
	stream  int    // NothingLeft, NoSRTP: 1-based index of the m= line at fault (0: all streams)
	proto   []byte // NoSRTP: proto of that stream (a slice of the input)
	line    int    // Malformed: 1-based line number
	why     string // Malformed: what is wrong with that line
}

// filterState is filter's working state; it lives on filter's stack.
type filterState struct {
	sdp  []byte
	set  Set
	srtp bool
	out  []byte // nil until a section changes

	stream  int // m= lines seen
	liveIn  int // streams with a non-zero port
	liveOut int // of those, streams not declined or emptied
	changed bool
	noSRTP  int    // first audio stream without SRTP, or 0
	proto   []byte // its proto
	empty   int    // first audio stream left without a codec, or 0
	removed Set
}

func filter(sdp []byte, set Set, requireSRTP bool) ([]byte, report) {
	if set.Empty() && !requireSRTP {
		return sdp, report{outcome: Unchanged}
	}
	st := filterState{sdp: sdp, set: set, srtp: requireSRTP}
	secStart := -1
	lineNo := 0
	for off := 0; off < len(sdp); {
		line, next := nextLine(sdp, off)
		lineNo++
		if why := checkLine(line, lineNo == 1); why != "" {
			return sdp, report{outcome: Malformed, line: lineNo, why: why}
		}
		if len(line) >= 2 && line[0] == 'm' {
			if secStart >= 0 && !st.section(secStart, off) {
				return sdp, report{outcome: Malformed, line: lineNo, why: "bad m= line"}
			}
			secStart = off
			// Check the m= line itself now, so that the error names it.
			if _, ok := parseMLine(line); !ok {
				return sdp, report{outcome: Malformed, line: lineNo, why: "bad m= line"}
			}
		}
		off = next
	}
	if lineNo == 0 {
		return sdp, report{outcome: Malformed, line: 1, why: "empty"}
	}
	if secStart >= 0 && !st.section(secStart, len(sdp)) {
		return sdp, report{outcome: Malformed, line: lineNo, why: "bad m= line"}
	}

	switch {
	case st.noSRTP != 0:
		return sdp, report{outcome: NoSRTP, stream: st.noSRTP, proto: st.proto}
	case st.empty != 0:
		return sdp, report{outcome: NothingLeft, stream: st.empty, removed: st.removed}
	case st.changed && st.liveIn > 0 && st.liveOut == 0:
		return sdp, report{outcome: NothingLeft, removed: st.removed}
	case st.changed:
		return st.out, report{outcome: Changed, removed: st.removed}
	}
	return sdp, report{outcome: Unchanged}
}

// checkLine returns why line is not an SDP line, or "".
func checkLine(line []byte, first bool) string {
	if first && !bytes.HasPrefix(line, []byte("v=")) {
		return "does not start with v="
	}
	if len(line) == 0 {
		return "" // blank lines are kept, not judged
	}
	if len(line) < 2 || line[1] != '=' || !isLetter(line[0]) {
		return "not a <type>=<value> line"
	}
	if bytes.IndexByte(line, '\r') >= 0 {
		return "CR inside a line"
	}
	return ""
}

// section filters the m= section sdp[start:end]. It returns false if the
// m= line cannot be parsed.
func (st *filterState) section(start, end int) bool {
	line, next := nextLine(st.sdp, start)
	sec, ok := parseMLine(line)
	if !ok {
		return false
	}
	st.stream++
	if sec.port == 0 {
		st.copy(start, end)
		return true
	}
	st.liveIn++
	sec.analyze(st.sdp[next:end], st.set)
	audio := equalFold(sec.media, "audio")
	if st.srtp && audio && !sec.srtp && st.noSRTP == 0 {
		st.noSRTP, st.proto = st.stream, sec.proto
	}
	changed, left := sec.result()
	if !changed {
		st.liveOut++
		st.copy(start, end)
		return true
	}
	st.changed = true
	st.removed.bits |= sec.codecs.bits
	if !left && audio {
		if st.empty == 0 {
			st.empty = st.stream
		}
		return true // the outcome is NothingLeft; no output needed
	}
	if left {
		st.liveOut++
	}
	st.begin(start)
	st.emit(&sec, start, end, !left)
	return true
}

// begin allocates the output, if not done yet, and copies sdp[:start] to it.
func (st *filterState) begin(start int) {
	if st.out != nil {
		return
	}
	// CRLF input shrinks or stays the same size (plus a CRLF the last line
	// may lack); LF input grows by one byte per line.
	n := len(st.sdp) + 2 + bytes.Count(st.sdp, []byte("\n")) - bytes.Count(st.sdp, []byte("\r\n"))
	st.out = make([]byte, 0, n)
	st.appendLines(0, start)
}

// copy copies sdp[start:end] to the output, once there is one.
func (st *filterState) copy(start, end int) {
	if st.out != nil {
		st.appendLines(start, end)
	}
}

// appendLines appends the lines of sdp[start:end] to the output, each
// ending in CRLF.
func (st *filterState) appendLines(start, end int) {
	for off := start; off < end; {
		line, next := nextLine(st.sdp, off)
		st.out = append(append(st.out, line...), '\r', '\n')
		off = next
	}
}

// emit appends the m= section sdp[start:end] without its removed formats,
// or, with decline, with port 0 and otherwise as is.
func (st *filterState) emit(sec *section, start, end int, decline bool) {
	line, off := nextLine(st.sdp, start)
	o := st.out
	if decline {
		o = append(o, line[:sec.portStart]...)
		o = append(o, '0')
		o = append(o, line[sec.portEnd:]...)
	} else {
		o = append(o, line[:sec.protoEnd]...)
		for i := 0; ; {
			var tok []byte
			if tok, i = nextToken(sec.fmts, i); tok == nil {
				break
			}
			if !sec.drops(tok, st.set) {
				o = append(append(o, ' '), tok...)
			}
		}
	}
	o = append(o, '\r', '\n')
	for off < end {
		line, off = nextLine(st.sdp, off)
		if !decline && sec.rtp && sec.removed.has(attrPT(line)) {
			continue
		}
		o = append(append(o, line...), '\r', '\n')
	}
	st.out = o
}

// section is one parsed m= line and what analyze found in its section.
type section struct {
	media              []byte
	proto              []byte
	fmts               []byte // the format list
	port               int
	portStart, portEnd int // the port field (with any /count) within the line
	protoEnd           int // end of the proto field within the line
	rtp                bool
	srtp               bool // …/SAVP(F) proto or an a=crypto line

	listed  ptset // RTP: payload types of the m= line
	removed ptset // RTP: payload types to remove (a subset of listed)
	aux     ptset // RTP: telephone-event, CN, red, rtx, FEC
	kept    int   // non-RTP: formats kept
	dropped int   // non-RTP: formats removed
	codecs  Set   // restricted codecs found
}

// parseMLine parses "m=<media> <port>[/<n>] <proto> <fmt> ...".
func parseMLine(line []byte) (section, bool) {
	var sec section
	if !bytes.HasPrefix(line, []byte("m=")) {
		return sec, false
	}
	media, i := nextToken(line, 2)
	if media == nil || i >= len(line) || line[2] == ' ' {
		return sec, false
	}
	sec.media = media
	port, i := nextToken(line, i)
	if port == nil {
		return sec, false
	}
	sec.portEnd = i
	sec.portStart = i - len(port)
	num, _, _ := bytes.Cut(port, []byte("/"))
	p, ok := atoi(num, 65535)
	if !ok {
		return sec, false
	}
	sec.port = p
	proto, i := nextToken(line, i)
	if proto == nil {
		return sec, false
	}
	sec.proto, sec.protoEnd = proto, i
	sec.fmts = line[i:]
	sec.rtp = containsFold(proto, "RTP/")
	sec.srtp = hasSuffixFold(proto, "/SAVP") || hasSuffixFold(proto, "/SAVPF")
	n := 0
	for j := 0; ; n++ {
		var tok []byte
		if tok, j = nextToken(sec.fmts, j); tok == nil {
			break
		}
		if sec.rtp {
			if _, ok := atoi(tok, 127); !ok {
				return sec, false
			}
		}
	}
	return sec, n > 0
}

// analyze reads the attribute lines of the section (body) and decides
// which formats to remove.
func (sec *section) analyze(body []byte, set Set) {
	for j := 0; ; {
		var tok []byte
		if tok, j = nextToken(sec.fmts, j); tok == nil {
			break
		}
		if sec.rtp {
			pt, _ := atoi(tok, 127)
			sec.listed.add(pt)
		} else if idx := codecIndex(tok, true); set.has(idx) {
			sec.dropped++
			sec.codecs.bits |= 1 << idx
		} else {
			sec.kept++
		}
	}
	var mapped, rtx, red ptset
	for off := 0; off < len(body); {
		line, next := nextLine(body, off)
		off = next
		if bytes.HasPrefix(line, []byte("a=crypto:")) {
			sec.srtp = true
			continue
		}
		if !sec.rtp || !bytes.HasPrefix(line, []byte("a=rtpmap:")) {
			continue
		}
		pt, name, ok := parseRtpmap(line[len("a=rtpmap:"):])
		if !ok || !sec.listed.has(pt) || mapped.has(pt) {
			continue // the first a=rtpmap of a payload type counts
		}
		mapped.add(pt)
		switch {
		case equalFold(name, "rtx"):
			rtx.add(pt)
			sec.aux.add(pt)
		case equalFold(name, "red"):
			red.add(pt)
			sec.aux.add(pt)
		case isAux(name):
			sec.aux.add(pt)
		}
		if idx := codecIndex(name, true); set.has(idx) {
			sec.removed.add(pt)
			sec.codecs.bits |= 1 << idx
		}
	}
	if !sec.rtp {
		return
	}
	for pt := 0; pt <= maxStaticPT; pt++ {
		if !sec.listed.has(pt) || mapped.has(pt) {
			continue
		}
		if pt == ptCN {
			sec.aux.add(pt)
		}
		if idx := staticIndex(pt); set.has(idx) {
			sec.removed.add(pt)
			sec.codecs.bits |= 1 << idx
		}
	}
	// Formats that depend on a removed one go too, until none is left.
	deps := rtx.or(red).and(sec.listed)
	for changed := !sec.removed.empty() && !deps.empty(); changed; {
		changed = false
		for off := 0; off < len(body); {
			line, next := nextLine(body, off)
			off = next
			if !bytes.HasPrefix(line, []byte("a=fmtp:")) {
				continue
			}
			pt, params, ok := ptPrefix(line[len("a=fmtp:"):])
			if !ok || !deps.has(pt) || sec.removed.has(pt) {
				continue
			}
			if (rtx.has(pt) && sec.removed.has(aptOf(params))) || (red.has(pt) && redRemoved(params, sec.removed)) {
				sec.removed.add(pt)
				changed = true
			}
		}
	}
}

// result says whether the section changes, and whether a codec is left.
func (sec *section) result() (changed, left bool) {
	if !sec.rtp {
		return sec.dropped > 0, sec.kept > 0
	}
	return !sec.removed.empty(), !sec.listed.andNot(sec.removed).andNot(sec.aux).empty()
}

// drops reports whether the format tok of the m= line is removed.
func (sec *section) drops(tok []byte, set Set) bool {
	if sec.rtp {
		pt, _ := atoi(tok, 127)
		return sec.removed.has(pt)
	}
	return set.has(codecIndex(tok, true))
}

// Static payload types (RFC 3551 tables 4 and 5).
const (
	ptCN        = 13 // comfort noise
	maxStaticPT = 34
)

// staticIndex returns the codec bit of a static payload type, or -1.
func staticIndex(pt int) int {
	switch pt {
	case 0:
		return idxPCMU
	case 3:
		return idxGSM
	case 4:
		return idxG723
	case 8:
		return idxPCMA
	case 9:
		return idxG722
	case 15:
		return idxG728
	case 18:
		return idxG729
	case 31:
		return idxH261
	case 34:
		return idxH263
	}
	return -1
}

// isAux reports whether an encoding name is not a codec of its own: DTMF,
// comfort noise, redundancy, retransmission or FEC. A stream left with only
// these has no codec.
func isAux(name []byte) bool {
	for _, a := range [...]string{"telephone-event", "CN", "red", "rtx", "ulpfec", "flexfec", "parityfec"} {
		if equalFold(name, a) {
			return true
		}
	}
	return false
}

// parseRtpmap parses "<pt> <name>/<rate>...".
func parseRtpmap(b []byte) (pt int, name []byte, ok bool) {
	pt, rest, ok := ptPrefix(b)
	if !ok {
		return 0, nil, false
	}
	name, _, _ = bytes.Cut(rest, []byte("/"))
	if i := bytes.IndexAny(name, " \t"); i >= 0 {
		name = name[:i]
	}
	return pt, name, len(name) > 0
}

// ptPrefix parses "<pt> <rest>" (the value of a=rtpmap, a=fmtp, a=rtcp-fb).
func ptPrefix(b []byte) (pt int, rest []byte, ok bool) {
	num, i := nextToken(b, 0)
	if num == nil || b[0] == ' ' || b[0] == '\t' {
		return 0, nil, false
	}
	pt, ok = atoi(num, 127)
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return pt, b[i:], ok
}

// attrPT returns the payload type of an a=rtpmap, a=fmtp or a=rtcp-fb
// line, or -1 for any other line (or a=rtcp-fb:*).
func attrPT(line []byte) int {
	var rest []byte
	switch {
	case bytes.HasPrefix(line, []byte("a=rtpmap:")):
		rest = line[len("a=rtpmap:"):]
	case bytes.HasPrefix(line, []byte("a=fmtp:")):
		rest = line[len("a=fmtp:"):]
	case bytes.HasPrefix(line, []byte("a=rtcp-fb:")):
		rest = line[len("a=rtcp-fb:"):]
	default:
		return -1
	}
	pt, _, ok := ptPrefix(rest)
	if !ok {
		return -1
	}
	return pt
}

// aptOf returns the apt= payload type of rtx format parameters, or -1.
func aptOf(params []byte) int {
	for len(params) > 0 {
		var p []byte
		p, params, _ = bytes.Cut(params, []byte(";"))
		p = bytes.TrimSpace(p)
		if len(p) > 4 && equalFold(p[:4], "apt=") {
			if pt, ok := atoi(p[4:], 127); ok {
				return pt
			}
		}
	}
	return -1
}

// redRemoved reports whether red format parameters ("<pt>/<pt>/...", RFC
// 2198 §5) name a removed payload type.
func redRemoved(params []byte, removed ptset) bool {
	params = bytes.TrimSpace(params)
	for len(params) > 0 {
		var p []byte
		p, params, _ = bytes.Cut(params, []byte("/"))
		if pt, ok := atoi(p, 127); ok && removed.has(pt) {
			return true
		}
	}
	return false
}

// ptset is a set of RTP payload types 0-127.
type ptset [2]uint64

func (s *ptset) add(pt int) { s[pt>>6] |= 1 << (pt & 63) }

func (s ptset) has(pt int) bool { return pt >= 0 && pt < 128 && s[pt>>6]&(1<<(pt&63)) != 0 }

func (s ptset) empty() bool { return s[0]|s[1] == 0 }

func (s ptset) or(o ptset) ptset { return ptset{s[0] | o[0], s[1] | o[1]} }

func (s ptset) and(o ptset) ptset { return ptset{s[0] & o[0], s[1] & o[1]} }

func (s ptset) andNot(o ptset) ptset { return ptset{s[0] &^ o[0], s[1] &^ o[1]} }

// nextLine returns the line of b starting at off, without its LF or CRLF,
// and the offset of the next line.
func nextLine(b []byte, off int) (line []byte, next int) {
	i := bytes.IndexByte(b[off:], '\n')
	if i < 0 {
		line, next = b[off:], len(b)
	} else {
		line, next = b[off:off+i], off+i+1
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, next
}

// nextToken returns the next token of b at or after i, separated by spaces
// or tabs, and the offset just after it; nil at the end.
func nextToken(b []byte, i int) (tok []byte, next int) {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	j := i
	for j < len(b) && b[j] != ' ' && b[j] != '\t' {
		j++
	}
	if j == i {
		return nil, j
	}
	return b[i:j], j
}

// atoi parses a decimal number of at most 5 digits, no larger than max.
func atoi(b []byte, max int) (int, bool) {
	if len(b) == 0 || len(b) > 5 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= max
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// containsFold reports whether b contains s under ASCII case folding.
func containsFold(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if equalFold(b[i:i+len(s)], s) {
			return true
		}
	}
	return false
}

func hasSuffixFold(b []byte, s string) bool {
	return len(b) >= len(s) && equalFold(b[len(b)-len(s):], s)
}
