package conformance

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// TextReporter writes one line per check as it ends, "PASS name (time)" or
// "FAIL name (time)", followed for a failure by the rule and the reason.
// With rules set, passed checks show their rule too.
func TextReporter(w io.Writer, rules bool) Reporter {
	return ReporterFunc(func(o Outcome) {
		verdict := "PASS"
		if !o.Passed() {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "%s  %s (%s)\n", verdict, o.Check.Name, o.Duration.Round(10*time.Millisecond))
		if rules || !o.Passed() {
			fmt.Fprintf(w, "      rule: %s\n", o.Check.Rule)
		}
		if !o.Passed() {
			fmt.Fprintf(w, "      why:  %s\n", indent(o.Err.Error(), "            "))
		}
	})
}

// indent puts prefix before every line of s but the first.
func indent(s, prefix string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}
