package rewritegen

import (
	"fmt"

	"github.com/sipward/sipward/internal/provision"
	"github.com/sipward/sipward/internal/store"
)

// input is a checked request: the examples that change their input (with
// their index in the request), and every input that must stay unchanged.
type input struct {
	typ       store.RewriteType
	all       []Example // the request's examples
	examples  []Example // those whose output differs from the input
	index     []int     // index in all of each of examples
	identity  []int     // index in all of the examples that change nothing
	unchanged []string  // the request's unchanged inputs and the identity examples' inputs
}

// prepare checks req; the error is a *FieldError.
func prepare(req Request) (*input, error) {
	in := &input{typ: req.Type, all: req.Examples}
	switch req.Type {
	case "":
		in.typ = store.RewriteDestination
	case store.RewriteDestination, store.RewriteCLI:
	default:
		return nil, fieldErr("type", "%q: must be destination or cli", req.Type)
	}
	switch {
	case len(req.Examples) == 0:
		return nil, fieldErr("examples", "at least one example is required")
	case len(req.Examples) > maxExamples:
		return nil, fieldErr("examples", "%d examples: at most %d are allowed", len(req.Examples), maxExamples)
	case len(req.Unchanged) > maxUnchanged:
		return nil, fieldErr("unchanged", "%d inputs: at most %d are allowed", len(req.Unchanged), maxUnchanged)
	}
	if err := in.addExamples(req.Examples); err != nil {
		return nil, err
	}
	if err := in.addUnchanged(req.Unchanged); err != nil {
		return nil, err
	}
	if len(in.examples) == 0 {
		return nil, fieldErr("examples", "no example changes its input; give at least one whose output differs")
	}
	return in, nil
}

func (in *input) addExamples(ex []Example) error {
	seen := map[string]int{}
	for i, e := range ex {
		f := fmt.Sprintf("examples[%d]", i)
		if err := checkNumber(f+".input", e.Input); err != nil {
			return err
		}
		if err := checkNumber(f+".output", e.Output); err != nil {
			return err
		}
		if j, ok := seen[e.Input]; ok && ex[j].Output != e.Output {
			return fieldErr(f+".output", "%q: examples[%d] maps the same input %q to %q", e.Output, j, e.Input, ex[j].Output)
		} else if !ok {
			seen[e.Input] = i
		}
		if e.Input == e.Output {
			in.identity = append(in.identity, i)
			in.unchanged = append(in.unchanged, e.Input)
			continue
		}
		in.examples = append(in.examples, e)
		in.index = append(in.index, i)
	}
	return nil
}

func (in *input) addUnchanged(us []string) error {
	changed := map[string]int{}
	for i, e := range in.examples {
		changed[e.Input] = in.index[i]
	}
	for i, u := range us {
		f := fmt.Sprintf("unchanged[%d]", i)
		if err := checkNumber(f, u); err != nil {
			return err
		}
		if j, ok := changed[u]; ok {
			return fieldErr(f, "%q is examples[%d].input, which the example changes to %q", u, j, in.all[j].Output)
		}
		in.unchanged = append(in.unchanged, u)
	}
	return nil
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// checkNumber checks an example's input or output or an unchanged input.
func checkNumber(field, s string) error {
	switch {
	case s == "":
		return fieldErr(field, "is required")
	case len(s) > maxNumber:
		return fieldErr(field, "is longer than %d characters", maxNumber)
	case !isDialString(s):
		return fieldErr(field, "%q: only digits, *, # and + are allowed", s)
	}
	return nil
}

func isDialString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isDigit(c) && c != '*' && c != '#' && c != '+' {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// validRule reports whether sipward would accept r: provisioning's own
// check of a rewrite rule, so the two cannot drift apart.
func validRule(r Rule) bool {
	return provision.ValidateRewrite(r.RewriteRule(store.RewriteDestination)) == nil
}
