// Package testenv decides what a test does when the machine lacks what it
// needs (root, runc, ip, a built binary): it fails, so that `go test`
// never reports ok for tests that did not run. A developer who knows the
// machine cannot run them opts out with FEDLET_TEST_SKIP_MISSING=1, and
// those tests skip instead; under CI they fail whatever the variable says.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// SkipMissingEnv is the environment variable that, set to 1, makes tests
// whose prerequisites are missing skip instead of fail.
const SkipMissingEnv = "FEDLET_TEST_SKIP_MISSING"

// Need ends t when ok is false, saying that what is missing: it fails t,
// or skips it when the developer opted out (SkipMissingEnv=1, not in CI).
func Need(t testing.TB, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	Missing(t, "missing: %s", what)
}

// Missing ends t as Need does, with a message of its own.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if SkipAllowed() {
		t.Skipf("%s (skipped: %s=1)", msg, SkipMissingEnv)
		return
	}
	t.Fatalf("%s (make test checks these first: integration/check-test-env.sh; %s=1 skips such tests)", msg, SkipMissingEnv)
}

// SkipAllowed says whether tests may skip for what the machine lacks.
func SkipAllowed() bool {
	return os.Getenv(SkipMissingEnv) == "1" && os.Getenv("CI") == ""
}
