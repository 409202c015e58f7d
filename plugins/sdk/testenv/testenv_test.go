package testenv

import (
	"testing"
)

// recorder stands in for a test, to see how Need ends it.
type recorder struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = format
}
func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = true
	r.msg = format
}

func TestNeed(t *testing.T) {
	for _, tc := range []struct {
		skipEnv, ci   string
		ok            bool
		failed, skips bool
	}{
		{ok: true},
		{failed: true},
		{skipEnv: "1", skips: true},
		{skipEnv: "yes", failed: true},
		{skipEnv: "1", ci: "true", failed: true},
	} {
		t.Setenv(SkipMissingEnv, tc.skipEnv)
		t.Setenv("CI", tc.ci)
		r := &recorder{}
		Need(r, "runc", tc.ok)
		if r.failed != tc.failed || r.skipped != tc.skips {
			t.Errorf("%s=%q CI=%q ok=%v: failed %v, skipped %v; want failed %v, skipped %v",
				SkipMissingEnv, tc.skipEnv, tc.ci, tc.ok, r.failed, r.skipped, tc.failed, tc.skips)
		}
	}
}
