// Package hygiene checks the repository's conventions: every package has a
// doc comment, every pipeline stage has a README with the fixed sections,
// and every Prometheus metric is named sipward_<component>_<thing>.
package hygiene

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const root = "../.."

// goDirs returns every directory with non-test Go files, by package.
func goDirs(t *testing.T) map[string][]*ast.File {
	t.Helper()
	out := map[string][]*ast.File{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		out[filepath.Dir(path)] = append(out[filepath.Dir(path)], f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPackageDocs: one package comment per package (tailscale's rule).
func TestPackageDocs(t *testing.T) {
	for dir, files := range goDirs(t) {
		docs := 0
		for _, f := range files {
			if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
				docs++
			}
		}
		if docs == 0 {
			t.Errorf("%s: package %s has no doc comment", dir, files[0].Name.Name)
		}
	}
}

// TestStageReadmes: each stage documents itself in the same sections.
func TestStageReadmes(t *testing.T) {
	sections := []string{"Name", "Description", "Configuration", "Examples", "Metrics", "SIP responses"}
	stages, err := os.ReadDir(filepath.Join(root, "internal", "stage"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stages {
		if !s.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, "internal", "stage", s.Name(), "README.md"))
		if err != nil {
			t.Errorf("stage %s has no README.md", s.Name())
			continue
		}
		for _, sec := range sections {
			if !regexp.MustCompile(`(?m)^##+ ` + regexp.QuoteMeta(sec) + `\s*$`).Match(b) {
				t.Errorf("stage %s: README.md lacks a %q section", s.Name(), sec)
			}
		}
	}
}

var metricName = regexp.MustCompile(`^sipward_[a-z]+_[a-z0-9_]+$`)

// TestMetricNaming: every metric name literal is sipward_<component>_<thing>,
// and counters end in _total.
func TestMetricNaming(t *testing.T) {
	for dir, files := range goDirs(t) {
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				kv, ok := n.(*ast.KeyValueExpr)
				if !ok {
					return true
				}
				key, ok := kv.Key.(*ast.Ident)
				lit, ok2 := kv.Value.(*ast.BasicLit)
				if !ok || !ok2 || key.Name != "Name" || lit.Kind != token.STRING {
					return true
				}
				name, _ := strconv.Unquote(lit.Value)
				if !strings.HasPrefix(name, "sipward_") {
					return true // not a metric name
				}
				if !metricName.MatchString(name) {
					t.Errorf("%s: metric %q is not sipward_<component>_<thing>", dir, name)
				}
				return true
			})
		}
	}
}
