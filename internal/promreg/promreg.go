// Package promreg registers Prometheus collectors so that a component built
// twice on one registry (a chain rebuilt on reload, two nodes in one test
// process) shares its collectors instead of failing.
package promreg

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns it, or returns the collector of
// the same type already registered there under the same description.
// owner ("stage/sanity") prefixes any other error.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C, owner string) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("%s: register metrics: %w", owner, err)
	}
	return c, nil
}
