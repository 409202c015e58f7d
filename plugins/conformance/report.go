package conformance

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// TextReporter writes first which suite runs and why ("SUITE name: why"),
// then one line per check as it ends, "PASS name (time)" or "FAIL name
// (time)", followed for a failure by the rule and the reason. With rules
// set, passed checks show their rule too.
func TextReporter(w io.Writer, rules bool) Reporter {
	return &textReporter{w: w, rules: rules}
}

type textReporter struct {
	w     io.Writer
	rules bool
}

func (r *textReporter) ReportSuite(s Suite, why string) {
	fmt.Fprintf(r.w, "SUITE %s: %s\n", s, why)
}

func (r *textReporter) Report(o Outcome) {
	verdict := "PASS"
	if !o.Passed() {
		verdict = "FAIL"
	}
	fmt.Fprintf(r.w, "%s  %s (%s)\n", verdict, o.Check.Name, o.Duration.Round(10*time.Millisecond))
	if r.rules || !o.Passed() {
		fmt.Fprintf(r.w, "      rule: %s\n", o.Check.Rule)
	}
	if !o.Passed() {
		fmt.Fprintf(r.w, "      why:  %s\n", indent(o.Err.Error(), "            "))
	}
}

// indent puts prefix before every line of s but the first.
func indent(s, prefix string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}
