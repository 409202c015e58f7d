package conformance

import (
	"context"
	"testing"
)

// Test runs the kit from a Go test: it launches the plugin, chooses the
// suite from its Describe (logged with the reason), runs each selected
// check of that suite as a subtest (t.Run with the check's name), and stops
// the plugin when t ends. A check that fails fails its subtest with the reason
// and the rule it verifies.
//
// A plugin author's test is one line, with a cfg naming the built binary:
//
//	func TestConformance(t *testing.T) { conformance.Test(t, cfg) }
func Test(t *testing.T, cfg Config) Result {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return test(t, cfg, startPlugin)
}

// test runs the checks as subtests against the plugin start gives.
func test(t *testing.T, cfg Config, start starter) Result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newSuite(ctx, cfg, start)
	defer func() {
		if err := s.close(); err != nil {
			t.Errorf("stop the plugin: %v", err)
		}
	}()
	var res Result
	res.Suite, res.Why = s.choose()
	t.Logf("suite %s: %s", res.Suite, res.Why)
	for _, c := range selectChecks(res.Suite, cfg.Run) {
		t.Run(c.Name, func(t *testing.T) {
			o := s.run(t.Context(), c)
			res.Outcomes = append(res.Outcomes, o)
			if o.Err != nil {
				t.Errorf("%v\n(rule: %s)", o.Err, c.Rule)
			}
		})
	}
	return res
}
