// Package rewritegen generates a parameter-rewrite rule from examples. Given
// numbers and what they should become, and numbers that must stay as they
// are, Generate returns the most general simple rule that maps every example
// exactly and matches none of the unchanged numbers: a prefix rule when one
// fits, else an anchored RE2 regex fenced in by a digit class or a length. It
// is deterministic, offline and fast, and every rule it returns has been run
// through internal/paramrewrite against every example and unchanged number,
// so what it proposes is what calls get. When no single rule fits, it
// returns a *ConflictError proposing one rule per group of examples; bad
// input is a *FieldError naming the field.
package rewritegen

import (
	"fmt"
	"strings"

	"github.com/sipward/sipward/internal/paramrewrite"
	"github.com/sipward/sipward/internal/store"
)

// Limits of a request. (A rule's own limits are provisioning's:
// validRule.)
const (
	maxExamples  = 200
	maxUnchanged = 200
	maxNumber    = 64 // an example's input or output, an unchanged input
)

// Example is a number and what the rule must turn it into.
type Example struct {
	Input  string `json:"input"`
	Output string `json:"output"`
}

// Request asks for a rule of Type that maps every example and leaves every
// Unchanged input alone: the rule must not match it at all, since in sipward
// the first matching rule fires and stops the others. An example whose
// output equals its input counts as unchanged. Type "" means destination.
type Request struct {
	Type      store.RewriteType `json:"type"`
	Examples  []Example         `json:"examples"`
	Unchanged []string          `json:"unchanged"`
}

// Rule is a generated rewrite rule, in the form of store.RewriteRule.
type Rule struct {
	Regex       bool   `json:"regex"`
	Match       string `json:"match"`
	Replacement string `json:"replacement"`
}

// RewriteRule returns r as a store rule of type typ (no owner, ID or order).
func (r Rule) RewriteRule(typ store.RewriteType) store.RewriteRule {
	return store.RewriteRule{Type: typ, Regex: r.Regex, Match: r.Match, Replacement: r.Replacement}
}

// Sample is what the rule does to an input the generator made up.
type Sample struct {
	Input   string `json:"input"`
	Output  string `json:"output"`
	Matched bool   `json:"matched"`
}

// Result is a rule that maps every example, in words, with samples showing
// how far it reaches.
type Result struct {
	Rule        Rule     `json:"rule"`
	Explanation string   `json:"explanation"`
	Samples     []Sample `json:"samples"`
}

// Group is a set of examples one proposed rule maps.
type Group struct {
	Examples    []Example `json:"examples"`
	Rule        Rule      `json:"rule"`
	Explanation string    `json:"explanation"`
}

// Pair names two examples that no single rule maps together, by their index
// in Request.Examples, with their inputs so that the pair reads on its own.
type Pair struct {
	A      int    `json:"a"`
	B      int    `json:"b"`
	InputA string `json:"input_a"`
	InputB string `json:"input_b"`
}

// ConflictError says that no single rule maps every example. Groups propose
// one rule per group; every example is in exactly one group (an example that
// leaves its input unchanged is in the first: no proposed rule matches it).
// The rules of different groups may overlap, so their order matters when
// they are installed. Disagree holds, for each group after the first, a pair
// of the group's first example and an earlier example that no rule maps
// together; it is empty for a group whose first example only conflicts with
// several earlier ones at once (say, a fourth prefix to strip).
type ConflictError struct {
	Groups   []Group `json:"groups"`
	Disagree []Pair  `json:"disagree"`
}

func (e *ConflictError) Error() string {
	var b strings.Builder
	b.WriteString("no single rule maps every example")
	for i, p := range e.Disagree {
		if i == 3 {
			b.WriteString("; …")
			break
		}
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(&b, "%sthe inputs %s and %s need different rules", sep, p.InputA, p.InputB)
	}
	fmt.Fprintf(&b, " (%d rules proposed)", len(e.Groups))
	return b.String()
}

// FieldError is bad input; Field names it as the JSON request does, e.g.
// "examples[2].output" or "unchanged[0]".
type FieldError struct {
	Field string `json:"field"`
	Msg   string `json:"msg"`
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Generate returns the most general simple rule that maps every example of
// req and matches none of its unchanged inputs. Errors are *FieldError (bad
// input) or *ConflictError (no single rule fits).
func Generate(req Request) (Result, error) {
	in, err := prepare(req)
	if err != nil {
		return Result{}, err
	}
	shapes := seedShapes(in.examples[0])
	for _, e := range in.examples[1:] {
		shapes = extendAll(shapes, e)
	}
	p, rs, ok := best(shapes, in.examples, in)
	if !ok {
		return Result{}, conflict(in)
	}
	return Result{Rule: p.rule(), Explanation: p.explain(), Samples: samples(&p, rs, in)}, nil
}

// verify compiles r with paramrewrite, as the snapshot does, and reports
// whether it maps every example and matches no unchanged input.
func verify(r Rule, typ store.RewriteType, ex []Example, unchanged []string) (*paramrewrite.Rules, bool) {
	sr := r.RewriteRule(typ)
	sr.ID = 1
	rs, err := paramrewrite.Compile([]store.RewriteRule{sr})
	if err != nil {
		return nil, false
	}
	for _, e := range ex {
		if out, _, ok := rs.Apply(typ, e.Input); !ok || out != e.Output {
			return nil, false
		}
	}
	for _, u := range unchanged {
		if _, _, ok := rs.Apply(typ, u); ok {
			return nil, false
		}
	}
	return rs, true
}
