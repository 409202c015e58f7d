package boundary

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// listed is what `go list -json` says of one package, as far as the check
// needs it.
type listed struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	// Deps are every package the non-test build needs, transitively: an
	// arrow through a package outside Checked (cmd/, say) is caught here.
	Deps []string
}

// crossings lists, one line per package and import, every arrow from pkgs
// into Forbidden.
func crossings(pkgs []listed) []string {
	var out []string
	for _, p := range pkgs {
		seen := map[string]bool{}
		report := func(how string, imports []string) {
			for _, imp := range imports {
				if forbidden(imp) && !seen[imp] {
					seen[imp] = true
					out = append(out, fmt.Sprintf("%s %s %s", p.ImportPath, how, imp))
				}
			}
		}
		report("imports", p.Imports)
		report("imports in its tests", p.TestImports)
		report("imports in its external tests", p.XTestImports)
		report("depends (through its imports) on", p.Deps)
	}
	return out
}

func forbidden(path string) bool {
	for _, f := range Forbidden {
		if path == f || strings.HasPrefix(path, f+"/") {
			return true
		}
	}
	return false
}

func TestPluginsDoNotImportTheAgent(t *testing.T) {
	root := moduleRoot(t)
	var patterns []string
	for _, p := range Checked {
		if _, err := os.Stat(filepath.Join(root, strings.TrimSuffix(p, "/..."))); err == nil {
			patterns = append(patterns, p)
		}
	}
	cmd := exec.Command("go", append([]string{"list", "-json=ImportPath,Imports,TestImports,XTestImports,Deps"}, patterns...)...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", patterns, err, stderr.Bytes())
	}
	pkgs := decode(t, out)
	if len(pkgs) == 0 {
		t.Fatalf("go list %v listed no package", patterns)
	}
	for _, line := range crossings(pkgs) {
		t.Errorf("%s: backends, plugins, the SDK and the conformance kit must not import the agent (core/) or the end-to-end tests (integration/)", line)
	}
}

// TestCrossingsNamesPackageAndImport checks the check: each kind of arrow
// into core/ or integration/ is reported with the package and the import.
func TestCrossingsNamesPackageAndImport(t *testing.T) {
	got := crossings([]listed{
		{ImportPath: Module + "/plugins/ok", Imports: []string{Module + "/plugins/sdk", Module + "/corex"}},
		{ImportPath: Module + "/plugins/a", Imports: []string{Module + "/core/pod"}, Deps: []string{Module + "/core/pod"}},
		{ImportPath: Module + "/cni/b", TestImports: []string{Module + "/integration/cluster"}},
		{ImportPath: Module + "/plugins/c", XTestImports: []string{Module + "/core"}},
		{ImportPath: Module + "/plugins/d", Deps: []string{Module + "/core/config"}},
	})
	want := []string{
		Module + "/plugins/a imports " + Module + "/core/pod",
		Module + "/cni/b imports in its tests " + Module + "/integration/cluster",
		Module + "/plugins/c imports in its external tests " + Module + "/core",
		Module + "/plugins/d depends (through its imports) on " + Module + "/core/config",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("crossings =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func decode(t *testing.T, out []byte) []listed {
	t.Helper()
	var pkgs []listed
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listed
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return pkgs
		}
		if err != nil {
			t.Fatalf("decode go list's output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		t.Fatalf("find the module's go.mod: %v (%q)", err, gomod)
	}
	return filepath.Dir(gomod)
}
