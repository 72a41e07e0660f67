package sanity

import (
	"context"
	"testing"

	"github.com/sipward/sipward/internal/pipeline"
)

// TestCheckAllocs proves that checking a valid INVITE allocates nothing:
// Check reads the header fields the parser already typed and never calls
// sipgo's lazy accessors (which allocate when a header is absent).
func TestCheckAllocs(t *testing.T) {
	c, err := NewChecker(Config{Supported: []string{"replaces"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"invite-valid", "invite-no-max-forwards", "options-max-forwards-zero"} {
		req := parseFile(t, file)
		allocs := testing.AllocsPerRun(1000, func() {
			if _, ok := c.Check(req, pipeline.UDP); !ok {
				t.Fatal("Check rejected a valid request")
			}
		})
		t.Logf("Check(%s): %v allocs/op", file, allocs)
		if allocs != 0 {
			t.Errorf("Check(%s) allocates %v times per run, want 0", file, allocs)
		}
	}
}

// TestStageAllocs: the stage adds nothing on top of Check for a request it
// passes on.
func TestStageAllocs(t *testing.T) {
	stage, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	next := pipeline.HandlerFunc{N: "next", F: func(context.Context, *pipeline.Request) (pipeline.Result, error) {
		return pipeline.Answered("next", 200), nil
	}}
	chain := pipeline.Build(next, stage)
	r := &pipeline.Request{Msg: parseFile(t, "invite-valid"), Transport: pipeline.TCP}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		r.Trace = pipeline.Trace{}
		if _, err := chain.ServeSIP(ctx, r); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("stage ServeSIP(invite-valid): %v allocs/op", allocs)
	if allocs != 0 {
		t.Errorf("stage allocates %v times per run, want 0", allocs)
	}
}

func BenchmarkCheck(b *testing.B) {
	c, err := NewChecker(Config{})
	if err != nil {
		b.Fatal(err)
	}
	for _, file := range []string{"invite-valid", "invite-cseq-mismatch"} {
		b.Run(file, func(b *testing.B) {
			req := parseFile(b, file)
			b.ReportAllocs()
			for b.Loop() {
				c.Check(req, pipeline.UDP)
			}
		})
	}
}
