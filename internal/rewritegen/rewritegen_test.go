package rewritegen

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sipward/sipward/internal/store"
)

// checkConflict checks that ce's groups hold every example of req exactly
// once and that each group's rule maps its examples and leaves every
// unchanged input alone.
func checkConflict(t *testing.T, req Request, ce *ConflictError) {
	t.Helper()
	typ := req.Type
	if typ == "" {
		typ = store.RewriteDestination
	}
	count := map[Example]int{}
	for _, g := range ce.Groups {
		checkValid(t, g.Rule)
		rs := compile(t, g.Rule, typ)
		if g.Explanation == "" {
			t.Errorf("group %+v has no explanation", g.Rule)
		}
		for _, e := range g.Examples {
			count[e]++
			out, _, ok := rs.Apply(typ, e.Input)
			if e.Input == e.Output {
				if ok {
					t.Errorf("group rule %+v matches %s, which must stay unchanged", g.Rule, e.Input)
				}
			} else if !ok || out != e.Output {
				t.Errorf("group rule %+v: %s gives %s; want %s", g.Rule, e.Input, out, e.Output)
			}
		}
		for _, u := range req.Unchanged {
			if _, _, ok := rs.Apply(typ, u); ok {
				t.Errorf("group rule %+v matches unchanged %s", g.Rule, u)
			}
		}
	}
	want := map[Example]int{}
	for _, e := range req.Examples {
		want[e]++
	}
	if !reflect.DeepEqual(count, want) {
		t.Errorf("groups hold %v; want every example once: %v", count, want)
	}
	for _, p := range ce.Disagree {
		if req.Examples[p.A].Input != p.InputA || req.Examples[p.B].Input != p.InputB {
			t.Errorf("pair %+v does not name the examples at its indices", p)
		}
	}
}

func TestConflictGroups(t *testing.T) {
	uk := ex("07700900123>447700900123", "01782123456>441782123456", "02079460000>442079460000")
	de := ex("030123456>4930123456", "08912345678>498912345678")
	req := Request{Examples: []Example{uk[0], de[0], uk[1], de[1], uk[2]}, Unchanged: []string{"00441782123456"}}
	_, err := Generate(req)
	var ce *ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("Generate = %v; want a *ConflictError", err)
	}
	checkConflict(t, req, ce)
	if len(ce.Groups) != 2 {
		t.Fatalf("%d groups; want 2 (UK, Germany): %+v", len(ce.Groups), ce.Groups)
	}
	wantRules := []Rule{
		{Regex: true, Match: `^0([1-9]\d*)$`, Replacement: "44$1"},
		{Regex: true, Match: `^0([1-9]\d*)$`, Replacement: "49$1"},
	}
	for i, g := range ce.Groups {
		if g.Rule != wantRules[i] {
			t.Errorf("group %d rule = %+v; want %+v", i, g.Rule, wantRules[i])
		}
	}
	if len(ce.Groups[0].Examples) != 3 {
		t.Errorf("first group = %+v; want the 3 UK examples", ce.Groups[0].Examples)
	}
	wantPair := []Pair{{A: 0, B: 1, InputA: "07700900123", InputB: "030123456"}}
	if !reflect.DeepEqual(ce.Disagree, wantPair) {
		t.Errorf("Disagree = %+v; want %+v", ce.Disagree, wantPair)
	}
	msg := err.Error()
	for _, s := range []string{"no single rule", "07700900123", "030123456", "2 rules"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not say %q", msg, s)
		}
	}
}

func TestConflictFourTechPrefixesAndStrays(t *testing.T) {
	// Four prefixes to strip exceed one rule's alternation, the + and 00
	// ones share a rule, and an identity example lands in the first group.
	req := Request{Examples: ex(
		"+447700900123>447700900123", "0033612345678>33612345678",
		"07700900123>447700900123", "01782123456>441782123456",
		"030123456>4930123456", "2125550123>12125550123",
		"447700900123>447700900123", "201>441782000201",
	)}
	_, err := Generate(req)
	var ce *ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("Generate = %v; want a *ConflictError", err)
	}
	checkConflict(t, req, ce)
	if len(ce.Groups) < 2 || len(ce.Groups) > 5 {
		t.Errorf("%d groups: %+v", len(ce.Groups), ce.Groups)
	}
	if !strings.Contains(err.Error(), "need different rules") {
		t.Errorf("error %q names no disagreeing examples", err)
	}
}

func TestFieldErrors(t *testing.T) {
	long := strings.Repeat("1", 65)
	many := make([]Example, 201)
	for i := range many {
		many[i] = Example{Input: fmt.Sprint(i + 1000), Output: fmt.Sprint(i + 44000)}
	}
	manyU := make([]string, 201)
	for i := range manyU {
		manyU[i] = "1"
	}
	for _, c := range []struct {
		name  string
		req   Request
		field string
	}{
		{"no examples", Request{}, "examples"},
		{"too many examples", Request{Examples: many}, "examples"},
		{"too many unchanged", Request{Examples: ex("0>1"), Unchanged: manyU}, "unchanged"},
		{"bad type", Request{Type: "from", Examples: ex("0>1")}, "type"},
		{"empty input", Request{Examples: ex("01>441", ">44")}, "examples[1].input"},
		{"empty output", Request{Examples: ex("01>")}, "examples[0].output"},
		{"long input", Request{Examples: ex("01>441", "02>442", long+">1")}, "examples[2].input"},
		{"long output", Request{Examples: ex("01>" + long)}, "examples[0].output"},
		{"letters in input", Request{Examples: ex("0800FLOWERS>44800")}, "examples[0].input"},
		{"space in output", Request{Examples: ex("01>44 1")}, "examples[0].output"},
		{"bad unchanged", Request{Examples: ex("01>441"), Unchanged: []string{"0044", "anonymous"}}, "unchanged[1]"},
		{"empty unchanged", Request{Examples: ex("01>441"), Unchanged: []string{""}}, "unchanged[0]"},
		{"unchanged example input", Request{Examples: ex("01>441", "02>442"), Unchanged: []string{"02"}}, "unchanged[0]"},
		{"same input, two outputs", Request{Examples: ex("01>441", "02>442", "01>491")}, "examples[2].output"},
		{"nothing changes", Request{Examples: ex("441>441")}, "examples"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Generate(c.req)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Generate = %v; want a *FieldError", err)
			}
			if fe.Field != c.field || !strings.HasPrefix(err.Error(), c.field+": ") {
				t.Errorf("error %q (field %q); want field %q", err, fe.Field, c.field)
			}
		})
	}
}

func TestDuplicatesAndUnchangedExamples(t *testing.T) {
	// The same example twice, and an example that keeps its number also
	// listed as unchanged, are fine.
	req := Request{
		Examples:  ex("07700900123>447700900123", "07700900123>447700900123", "0044123>0044123"),
		Unchanged: []string{"0044123"},
	}
	res, err := Generate(req)
	if err != nil {
		t.Fatal(err)
	}
	want := Rule{Regex: true, Match: `^0([1-9]\d*)$`, Replacement: "44$1"}
	if res.Rule != want {
		t.Errorf("rule = %+v; want %+v", res.Rule, want)
	}
}

func TestEmptyPrefixOnlyWithoutUnchanged(t *testing.T) {
	res, err := Generate(Request{Examples: ex("201>441782000201", "315>441782000315")})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Rule{Match: "", Replacement: "441782000"}); res.Rule != want {
		t.Errorf("rule = %+v; want %+v", res.Rule, want)
	}
	if res.Explanation != "Add 441782000 in front of every number." {
		t.Errorf("explanation = %q", res.Explanation)
	}
}

func TestDeterministic(t *testing.T) {
	reqs := []Request{{Examples: ex("07700900123>447700900123", "030123456>4930123456", "0033612345678>33612345678")}}
	for _, c := range genCases {
		reqs = append(reqs, Request{Type: c.typ, Examples: c.examples, Unchanged: c.unchanged})
	}
	for i, req := range reqs {
		r1, err1 := Generate(req)
		r2, err2 := Generate(req)
		if !reflect.DeepEqual(r1, r2) || !reflect.DeepEqual(err1, err2) {
			t.Errorf("request %d: two runs differ: %+v, %v / %+v, %v", i, r1, err1, r2, err2)
		}
	}
}

func TestJSONNames(t *testing.T) {
	res, err := Generate(Request{Examples: ex("07700900123>447700900123")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"rule":{"regex":false,"match":"0","replacement":"44"}`, `"explanation":`, `"samples":[{"input":`, `"output":`, `"matched":`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("%s lacks %s", b, k)
		}
	}
	b, _ = json.Marshal(ConflictError{Groups: []Group{{}}, Disagree: []Pair{{}}})
	for _, k := range []string{`"groups":[{"examples":`, `"rule":`, `"explanation":`, `"disagree":[{"a":0,"b":0,"input_a":`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("%s lacks %s", b, k)
		}
	}
}

// twenty returns 20 UK national examples with international numbers
// listed as unchanged, and 20 examples from 4 countries (a conflict).
func twenty() (uk, mixed Request) {
	cc := []string{"44", "49", "33", "61"}
	for i := range 20 {
		n := fmt.Sprintf("%d%03d%06d", 1+i%9, i, 123456+i*7919)
		uk.Examples = append(uk.Examples, Example{Input: "0" + n, Output: "44" + n})
		mixed.Examples = append(mixed.Examples, Example{Input: "0" + n, Output: cc[i%4] + n})
	}
	uk.Unchanged = []string{"00441782123456", "0033612345678", "+447700900123", "999", "112"}
	mixed.Unchanged = uk.Unchanged
	return uk, mixed
}

// TestGenerate20 runs the benchmark's requests once, for correctness (no
// timing is asserted).
func TestGenerate20(t *testing.T) {
	uk, mixed := twenty()
	res, err := Generate(uk)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Rule{Regex: true, Match: `^0([1-9]\d*)$`, Replacement: "44$1"}); res.Rule != want {
		t.Errorf("rule = %+v; want %+v", res.Rule, want)
	}
	_, err = Generate(mixed)
	var ce *ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("Generate = %v; want a *ConflictError", err)
	}
	checkConflict(t, mixed, ce)
	if len(ce.Groups) != 4 {
		t.Errorf("%d groups; want 4 (one per country)", len(ce.Groups))
	}
}

func BenchmarkGenerate20(b *testing.B) {
	uk, _ := twenty()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Generate(uk); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGenerateConflict20(b *testing.B) {
	_, mixed := twenty()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Generate(mixed); err == nil {
			b.Fatal("no conflict")
		}
	}
}

// TestFunctionLength holds the package's functions to one screenful, as
// test/hygiene does for the SIP glue.
func TestFunctionLength(t *testing.T) {
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok {
				n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
				if n > 80 {
					t.Errorf("%s: %s is %d lines; at most 80", name, fd.Name.Name, n)
				}
			}
		}
	}
}
