package sanity

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/pipeline"
)

// outcome is what becomes of one message after sipgo's parser and Check.
type outcome struct {
	Kind   string // pass | reject | drop | parse-error | response
	Status int    // for reject
}

func (o outcome) String() string {
	if o.Kind == "reject" {
		return fmt.Sprintf("reject %d", o.Status)
	}
	return o.Kind
}

var (
	pass       = outcome{Kind: "pass"}        // parsed, Check passed it on
	dropped    = outcome{Kind: "drop"}        // parsed, Check dropped it unanswered
	parseError = outcome{Kind: "parse-error"} // sipgo refused it; the transport drops it unanswered
	response   = outcome{Kind: "response"}    // parsed as a response; sanity checks requests only
)

func reject(status int) outcome { return outcome{Kind: "reject", Status: status} }

// run parses data as one UDP datagram and checks it.
func run(c *Checker, data []byte) outcome {
	msg, err := sip.ParseMessage(data)
	if err != nil {
		return parseError
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		return response
	}
	res, ok := c.Check(req, pipeline.UDP)
	switch {
	case ok:
		return pass
	case res.Drop:
		return dropped
	}
	return reject(res.Status)
}

// torture lists every RFC 4475 message in testdata/rfc4475 with the outcome
// sipward gives it (want) and the outcomes RFC 4475 accepts for it (rfc),
// all taken as received over UDP. A message whose want is not among rfc
// must be in knownGaps.
var torture = []struct {
	name string
	sect string // RFC 4475 section
	want outcome
	rfc  []outcome
}{
	// §3.1.1 Valid messages: parsers must accept them.
	{"wsinv", "3.1.1.1", pass, []outcome{pass}},
	{"intmeth", "3.1.1.2", pass, []outcome{pass}},
	{"esc01", "3.1.1.3", pass, []outcome{pass}},
	{"escnull", "3.1.1.4", pass, []outcome{pass}},
	{"esc02", "3.1.1.5", pass, []outcome{pass}}, // a UAS would then answer 501; not sanity's call
	{"lwsdisp", "3.1.1.6", pass, []outcome{pass}},
	{"longreq", "3.1.1.7", pass, []outcome{pass}},
	{"dblreq", "3.1.1.8", pass, []outcome{pass}}, // the trailing INVITE is datagram noise (§18.3)
	{"semiuri", "3.1.1.9", pass, []outcome{pass}},
	{"transports", "3.1.1.10", pass, []outcome{pass}},
	{"mpart01", "3.1.1.11", pass, []outcome{pass}},
	{"unreason", "3.1.1.12", response, []outcome{response}},
	{"noreason", "3.1.1.13", response, []outcome{response}},

	// §3.1.2 Invalid messages.
	{"badinv01", "3.1.2.1", parseError, []outcome{reject(400)}},
	{"clerr", "3.1.2.2", parseError, []outcome{reject(400)}},
	{"ncl", "3.1.2.3", parseError, []outcome{reject(400)}},      // "should respond with an error"
	{"scalar02", "3.1.2.4", parseError, []outcome{reject(400)}}, // CSeq over 2**32
	{"scalarlg", "3.1.2.5", parseError, []outcome{parseError}},  // a response: "simply discard it"
	{"quotbal", "3.1.2.6", parseError, []outcome{reject(400)}},
	{"ltgtruri", "3.1.2.7", parseError, []outcome{reject(400), pass}},
	{"lwsruri", "3.1.2.8", parseError, []outcome{reject(400)}},
	{"lwsstart", "3.1.2.9", parseError, []outcome{reject(400), pass}},
	{"trws", "3.1.2.10", parseError, []outcome{reject(400), pass}},
	{"escruri", "3.1.2.11", reject(400), []outcome{reject(400), pass}}, // pass only if the headers are then ignored
	{"baddate", "3.1.2.12", pass, []outcome{reject(400), pass}},        // Date is not used
	{"regbadct", "3.1.2.13", pass, []outcome{reject(400), pass}},       // sipgo infers the <>, as §3.1.2.13 allows
	{"badaspec", "3.1.2.14", parseError, []outcome{reject(400), pass}}, // pass = ignoring the spaces
	{"baddn", "3.1.2.15", pass, []outcome{reject(400), pass}},          // sipgo infers the quotes, as §3.1.2.15 allows
	{"badvers", "3.1.2.16", reject(505), []outcome{reject(505)}},
	{"mismatch01", "3.1.2.17", reject(400), []outcome{reject(400)}},
	{"mismatch02", "3.1.2.18", reject(400), []outcome{reject(501), reject(400)}},
	{"bigcode", "3.1.2.19", parseError, []outcome{parseError}}, // a response: "simply drop it"

	// §3.2 Transaction layer semantics.
	{"badbranch", "3.2.1", reject(400), []outcome{reject(400), pass}}, // pass = RFC 2543 fallback

	// §3.3 Application layer semantics.
	{"insuf", "3.3.1", dropped, []outcome{reject(400)}}, // "ideally, it will respond with a 400"
	{"unkscm", "3.3.2", reject(416), []outcome{reject(416)}},
	{"novelsc", "3.3.3", parseError, []outcome{reject(416), reject(404)}},
	{"unksm2", "3.3.4", reject(400), []outcome{reject(400), pass}}, // 400 from a registrar, pass at a proxy
	{"bext01", "3.3.5", reject(420), []outcome{reject(420)}},
	{"invut", "3.3.6", reject(415), []outcome{reject(415), pass}}, // 415 from an endpoint, pass at a proxy
	{"regaut01", "3.3.7", pass, []outcome{pass}},                  // authn then challenges (401)
	{"multi01", "3.3.8", reject(400), []outcome{reject(400)}},
	{"mcl01", "3.3.9", reject(400), []outcome{reject(400)}},  // "should respond with an error"
	{"bcast", "3.3.10", response, []outcome{response}},       // a B2BUA never routes responses by Via
	{"zeromf", "3.3.11", pass, []outcome{reject(483), pass}}, // an OPTIONS: the edge answers it itself
	{"cparam01", "3.3.12", pass, []outcome{pass}},
	{"cparam02", "3.3.13", pass, []outcome{pass}},
	{"regescrt", "3.3.14", pass, []outcome{pass}},
	{"sdp01", "3.3.15", reject(406), []outcome{reject(406), reject(400)}},

	// §3.4 Backward compatibility.
	{"inv2543", "3.4.1", pass, []outcome{pass}},
}

// knownGaps are the messages whose outcome is not one RFC 4475 accepts,
// and why. The test fails if one of them starts meeting the RFC, so that it
// is taken off this list.
var knownGaps = map[string]string{
	// Invalid messages refused by sipgo's parser: over UDP sipgo logs and
	// drops the datagram, over TCP it closes the connection; nobody answers.
	"badinv01": "sipgo's parser refuses the empty Via params (\"Malformed protocol name in Via header\"); dropped unanswered instead of 400",
	"clerr":    "sipgo's parser refuses a datagram shorter than Content-Length (ErrParseReadBodyIncomplete); dropped unanswered instead of 400",
	"ncl":      "sipgo's parser refuses the negative Content-Length; dropped unanswered instead of an error response",
	"scalar02": "sipgo's parser refuses the CSeq over 2**32; dropped unanswered instead of 400",
	"quotbal":  "sipgo's parser refuses the unterminated quote; dropped unanswered instead of 400",
	"ltgtruri": "sipgo's parser refuses the <> around the Request-URI; dropped unanswered instead of 400",
	"lwsruri":  "sipgo's parser refuses the LWS in the Request-URI; dropped unanswered instead of 400",
	"lwsstart": "sipgo's parser refuses the doubled SP in the request line; dropped unanswered instead of 400",
	"trws":     "sipgo's parser refuses the trailing SP in the request line; dropped unanswered instead of 400",
	"badaspec": "sipgo's parser refuses the spaces inside <>; dropped unanswered instead of 400",
	"novelsc": "sipgo's URI parser allows only letters in a scheme (RFC 3986 also allows digits, '+', '-' and '.'), " +
		"so it refuses \"soap.beep\"; dropped unanswered instead of 416",

	// Parsed, but answered differently.
	"insuf": "no From, To or Call-ID: a 400 could not carry the header fields every response must copy (RFC 3261 §8.2.6.2), " +
		"so sanity drops it (as DESIGN §3.1 asks for garbage)",
}

func TestRFC4475(t *testing.T) {
	c, err := NewChecker(Config{})
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("testdata/rfc4475/*.sip")
	if err != nil {
		t.Fatal(err)
	}
	onDisk := map[string]bool{}
	for _, f := range files {
		onDisk[strings.TrimSuffix(filepath.Base(f), ".sip")] = true
	}
	listed := map[string]bool{}
	counts := map[string]int{}
	for _, tc := range torture {
		listed[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "rfc4475", tc.name+".sip"))
			if err != nil {
				t.Fatal(err)
			}
			got := run(c, data)
			counts[got.Kind]++
			if got != tc.want {
				t.Errorf("RFC 4475 §%s %s: got %v, want %v", tc.sect, tc.name, got, tc.want)
			}
			meets := slices.Contains(tc.rfc, got)
			gap, isGap := knownGaps[tc.name]
			switch {
			case isGap && meets:
				t.Errorf("known gap %s now gives %v, which RFC 4475 accepts: take it out of knownGaps (was: %s)", tc.name, got, gap)
			case !isGap && !meets:
				t.Errorf("%s gives %v; RFC 4475 §%s accepts %v: fix it or list it in knownGaps with a reason", tc.name, got, tc.sect, tc.rfc)
			}
		})
	}
	for name := range onDisk {
		if !listed[name] {
			t.Errorf("testdata/rfc4475/%s.sip has no entry in the torture table", name)
		}
	}
	for name := range listed {
		if !onDisk[name] {
			t.Errorf("torture table lists %s, but testdata/rfc4475/%s.sip is missing", name, name)
		}
	}
	for name := range knownGaps {
		if !listed[name] {
			t.Errorf("knownGaps lists %s, which is not in the torture table", name)
		}
	}
	if len(torture) != 49 {
		t.Errorf("torture table has %d messages, RFC 4475 has 49", len(torture))
	}

	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&b, " %s=%d", k, counts[k])
	}
	t.Logf("RFC 4475: %d messages:%s; %d known gaps", len(torture), b.String(), len(knownGaps))
}
