package promreg

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterTwiceSharesTheCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "sipward_test_things_total", Help: "Things."}
	a, err := Register(reg, prometheus.NewCounter(opts), "test")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Register(reg, prometheus.NewCounter(opts), "test")
	if err != nil {
		t.Fatal(err)
	}
	a.Inc()
	if b != a {
		t.Error("a second registration did not return the first collector")
	}
	// Same name, other help: a real conflict, named by its owner.
	if _, err := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "sipward_test_things_total", Help: "Other."}), "stage/x"); err == nil || !strings.HasPrefix(err.Error(), "stage/x: register metrics") {
		t.Errorf("conflicting registration: %v", err)
	}
}
