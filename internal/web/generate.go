package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/sipward/sipward/internal/rewritegen"
	"github.com/sipward/sipward/internal/store"
)

// ---- "Generate from examples": a rewrite rule worked out from numbers
// and what they should become (internal/rewritegen). It fills in the Add a
// rule form and saves nothing.

// exampleSeps separate an example's input from its output, tried in order;
// without any, whitespace does.
var exampleSeps = []string{"→", "->", "=>", "=", ","}

// parseExamples reads the examples textarea: one "input → output" a line.
// It returns the examples and the line of each; a malformed line is an
// error on the field.
func parseExamples(f *form) ([]rewritegen.Example, []int) {
	var out []rewritegen.Example
	var lines []int
	for i, l := range strings.Split(f.raw("examples"), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		in, outp, ok := "", "", false
		for _, sep := range exampleSeps {
			if in, outp, ok = strings.Cut(l, sep); ok {
				break
			}
		}
		if !ok {
			if fs := strings.Fields(l); len(fs) == 2 {
				in, outp, ok = fs[0], fs[1], true
			}
		}
		in, outp = strings.TrimSpace(in), strings.TrimSpace(outp)
		if !ok || in == "" || outp == "" || strings.ContainsAny(in+outp, " \t") {
			f.fail("examples", fmt.Sprintf("line %d: %q: write it as input → output, such as 01782123456 → 441782123456", i+1, l))
			return nil, nil
		}
		out = append(out, rewritegen.Example{Input: in, Output: outp})
		lines = append(lines, i+1)
	}
	return out, lines
}

// parseUnchanged reads the numbers that must stay unchanged: one a line,
// or separated by commas or spaces. It returns them and the line of each.
func parseUnchanged(f *form) ([]string, []int) {
	var out []string
	var lines []int
	for i, l := range strings.Split(f.raw("unchanged"), "\n") {
		for _, n := range strings.FieldsFunc(l, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\r' }) {
			out = append(out, n)
			lines = append(lines, i+1)
		}
	}
	return out, lines
}

var (
	genFieldRe = regexp.MustCompile(`^(examples|unchanged)\[([0-9]+)\](?:\.(input|output))?$`)
	genRefRe   = regexp.MustCompile(`examples\[([0-9]+)\](?:\.(input|output))?`)
)

// refuseGen puts a generator error on its field, with lines for the
// examples and numbers it names.
func refuseGen(f *form, fe *rewritegen.FieldError, exLines, unLines []int) {
	lineOf := func(lines []int, s string) string {
		if i, err := strconv.Atoi(s); err == nil && i >= 0 && i < len(lines) {
			return "line " + strconv.Itoa(lines[i])
		}
		return "an example"
	}
	msg := genRefRe.ReplaceAllStringFunc(fe.Msg, func(ref string) string {
		m := genRefRe.FindStringSubmatch(ref)
		if m[2] != "" {
			return "the " + m[2] + " of the example on " + lineOf(exLines, m[1])
		}
		return "the example on " + lineOf(exLines, m[1])
	})
	m := genFieldRe.FindStringSubmatch(fe.Field)
	switch {
	case m == nil:
		f.fail(fe.Field, msg)
	case m[1] == "examples":
		part := ""
		if m[3] != "" {
			part = " " + m[3]
		}
		f.fail("examples", lineOf(exLines, m[2])+":"+part+" "+msg)
	default:
		f.fail("unchanged", lineOf(unLines, m[2])+": "+msg)
	}
}

// ruleValues are the Add a rule form's values for a generated rule, with
// the order typed there (htmx sends it along).
func ruleValues(typ store.RewriteType, r rewritegen.Rule, order string) url.Values {
	if typ == "" {
		typ = store.RewriteDestination
	}
	v := url.Values{"type": {string(typ)}, "match": {r.Match}, "replacement": {r.Replacement}, "order": {order}}
	if r.Regex {
		v.Set("regex", "on")
	}
	return v
}

// rewriteGenerate works out a rule from the examples and fills the Add a
// rule form with it; on a conflict the rule of group "use" when asked. htmx
// gets the panel (and the filled form out of band); a plain form post gets
// the whole page. Bad input answers 422.
func (s *Server) rewriteGenerate(w http.ResponseWriter, r *http.Request, ss *session) error {
	a, kind, id, ownerURL, err := s.rewriteOwner(r, ss)
	if err != nil {
		return err
	}
	g := newForm(r.PostForm)
	rw := &rewriteView{GenForm: g}
	typ := store.RewriteType(g.get("type"))
	examples, exLines := parseExamples(g)
	unchanged, unLines := parseUnchanged(g)
	if !g.HasErrors() {
		res, err := rewritegen.Generate(rewritegen.Request{Type: typ, Examples: examples, Unchanged: unchanged})
		var fe *rewritegen.FieldError
		var ce *rewritegen.ConflictError
		switch {
		case err == nil:
			rw.Generated = &genView{Result: &res}
			rw.RuleForm = newForm(ruleValues(typ, res.Rule, g.get("order")))
		case errors.As(err, &ce):
			msg := ce.Error()
			rw.Generated = &genView{Conflict: strings.ToUpper(msg[:1]) + msg[1:]}
			for i, grp := range ce.Groups {
				rw.Generated.Groups = append(rw.Generated.Groups, genGroup{N: i + 1, Group: grp})
			}
			if n, err := strconv.Atoi(g.get("use")); err == nil && n >= 1 && n <= len(ce.Groups) {
				rw.Generated.Used = n
				rw.RuleForm = newForm(ruleValues(typ, ce.Groups[n-1].Rule, g.get("order")))
			}
		case errors.As(err, &fe):
			refuseGen(g, fe, exLines, unLines)
		default:
			return err
		}
	}
	if g.HasErrors() {
		rw.Status = http.StatusUnprocessableEntity
	}
	rw.Filled = rw.RuleForm != nil
	if isHTMX(r) {
		if err := s.fillRewrite(r, ss, rw, kind, id, ownerURL); err != nil {
			return err
		}
		rw.OOB = true
		s.exec(w, r, rw.status(), "owner.html", "generate_response", rw)
		return nil
	}
	return s.renderOwner(w, r, ss, a, kind, id, rw)
}
