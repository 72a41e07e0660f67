package rewritegen

import (
	"errors"
	"testing"

	"github.com/sipward/sipward/internal/store"
)

// dial turns fuzz bytes into a dial string, mostly digits.
func dial(s string) string {
	const chars = "0123456789012345678901234567890123456789+*#"
	b := []byte(s)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

// FuzzGenerate checks that whatever Generate returns is right: a rule that
// maps every example and matches no unchanged input, groups that do so each,
// or a field error.
func FuzzGenerate(f *testing.F) {
	f.Add("07700900123", "447700900123", "01782123456", "441782123456", "00441782123456", false, false)
	f.Add("+4477", "4477", "0033", "33", "", false, false)
	f.Add("201", "441782000201", "315", "441782000315", "07700900123", false, true)
	f.Add("07700900123", "447700900123", "030123456", "4930123456", "", false, false)
	f.Add("1234#44", "44", "1234#33", "33", "44", true, false)
	f.Fuzz(func(t *testing.T, in1, out1, in2, out2, unchanged string, raw, cli bool) {
		if !raw {
			in1, out1, in2, out2, unchanged = dial(in1), dial(out1), dial(in2), dial(out2), dial(unchanged)
		}
		req := Request{Examples: []Example{{in1, out1}, {in2, out2}}}
		if unchanged != "" {
			req.Unchanged = []string{unchanged}
		}
		if cli {
			req.Type = store.RewriteCLI
		}
		res, err := Generate(req)
		var fe *FieldError
		var ce *ConflictError
		switch {
		case err == nil:
			checkValid(t, res.Rule)
			typ := req.Type
			if typ == "" {
				typ = store.RewriteDestination
			}
			rs := compile(t, res.Rule, typ)
			for _, e := range req.Examples {
				out, _, ok := rs.Apply(typ, e.Input)
				if out != e.Output || (ok && e.Input == e.Output) {
					t.Fatalf("rule %+v: %s gives %s (matched %v); want %s", res.Rule, e.Input, out, ok, e.Output)
				}
			}
			for _, u := range req.Unchanged {
				if _, _, ok := rs.Apply(typ, u); ok {
					t.Fatalf("rule %+v matches unchanged %s", res.Rule, u)
				}
			}
			checkSamples(t, res, rs, typ, req.Examples, req.Unchanged)
		case errors.As(err, &ce):
			checkConflict(t, req, ce)
		case !errors.As(err, &fe):
			t.Fatalf("Generate: %v is neither a *FieldError nor a *ConflictError", err)
		}
	})
}
