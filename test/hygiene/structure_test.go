package hygiene

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The SIP glue, bottom to top: the UDP transport, then the B2BUA and the
// registrar side by side, then the edge that owns listeners and chains.
const (
	sipudpDir    = "internal/sipudp"
	siptcpDir    = "internal/siptcp"
	b2buaDir     = "internal/b2bua"
	registrarDir = "internal/registrar"
	edgeDir      = "internal/edge"
	stageDir     = "internal/stage"
)

// glueDirs are the packages that must exist once the restructure is done,
// with what each one holds, for the error message.
var glueDirs = []struct{ dir, holds string }{
	{sipudpDir, "the UDP transport (socket, readers, transactions, timers, stateless answers)"},
	{siptcpDir, "the guard of the TCP and TLS listeners (per-source limits, timeouts)"},
	{b2buaDir, "calls, their legs, the in-dialog relay and keepalive"},
	{registrarDir, "bindings, NAT pings and MESSAGE delivery"},
	{edgeDir, "listeners, the per-method chains, the Result to SIP answer function and the decision log"},
}

// boundedDirs are the packages whose functions and files are held small by
// TestFunctionLength and TestNoMutualFileUse.
var boundedDirs = []string{sipudpDir, siptcpDir, b2buaDir, registrarDir, edgeDir, "internal/app", "internal/stage/route"}

const (
	maxEdgeLines = 1500 // internal/edge must have fewer non-test lines than this
	maxFuncLines = 80   // a func declaration spans at most this many lines
)

// TestLayering holds the layering of the SIP edge: the transport
// (internal/sipudp) sits below the B2BUA and the registrar, which do not know
// each other, and the edge sits above them; pipeline stages never reach into
// that glue nor into each other. The rule keeps each piece of SIP glue in a
// room a newcomer can find, and keeps a stage testable on its own.
func TestLayering(t *testing.T) {
	mod := modulePath(t)
	dirs := goDirs(t)

	// Every glue package exists (and has non-test Go files).
	have := map[string]bool{}
	for dir := range dirs {
		have[relDir(t, dir)] = true
	}
	for _, g := range glueDirs {
		if !have[g.dir] {
			t.Errorf("%s does not exist (no non-test Go files); it should hold %s", g.dir, g.holds)
		}
	}

	// under reports whether import path p is package dir or below it.
	under := func(p, dir string) bool {
		ip := mod + "/" + dir
		return p == ip || strings.HasPrefix(p, ip+"/")
	}
	glue := []string{sipudpDir, siptcpDir, b2buaDir, registrarDir, edgeDir}

	for dir, files := range dirs {
		rel := relDir(t, dir)
		for _, imp := range importsOf(files) {
			if why := forbidden(rel, imp, mod, glue, under); why != "" {
				t.Errorf("%s imports %s: %s", rel, imp, why)
			}
		}
	}
}

// forbidden says why package rel may not import imp, or "" if it may.
func forbidden(rel, imp, mod string, glue []string, under func(p, dir string) bool) string {
	inDir := func(dir string) bool { return rel == dir || strings.HasPrefix(rel, dir+"/") }
	switch {
	case strings.HasPrefix(rel, stageDir+"/"):
		// internal/stage/X/...: X is the stage this package belongs to.
		stage := strings.SplitN(strings.TrimPrefix(rel, stageDir+"/"), "/", 2)[0]
		for _, g := range glue {
			if under(imp, g) {
				return "a stage must not import the SIP glue"
			}
		}
		if under(imp, stageDir) && !under(imp, stageDir+"/"+stage) {
			return "a stage must not import another stage"
		}
	case inDir(sipudpDir), inDir(siptcpDir):
		for _, d := range []string{b2buaDir, registrarDir, edgeDir, stageDir} {
			if under(imp, d) {
				return "a transport must know nothing of calls, registrations, the edge or stages"
			}
		}
	case inDir(b2buaDir):
		if under(imp, registrarDir) || under(imp, edgeDir) {
			return "the B2BUA must not import the registrar or the edge above it"
		}
	case inDir(registrarDir):
		if under(imp, b2buaDir) || under(imp, edgeDir) {
			return "the registrar must not import the B2BUA or the edge above it"
		}
	}
	return ""
}

// importsOf returns the sorted, deduplicated import paths of files.
func importsOf(files []*ast.File) []string {
	seen := map[string]bool{}
	var out []string
	for _, f := range files {
		for _, is := range f.Imports {
			p := strings.Trim(is.Path.Value, "`\"")
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestEdgeSize holds internal/edge to what it is for: listeners, the chains,
// the one Result to SIP answer function and the decision log. Transport,
// calls and registrations live below it; if the edge grows past this size,
// glue is creeping back in.
func TestEdgeSize(t *testing.T) {
	names := sourceFiles(t, edgeDir)
	if len(names) == 0 {
		t.Fatalf("%s has no non-test Go files", edgeDir)
	}
	type count struct {
		name  string
		lines int
	}
	var counts []count
	total := 0
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(root, edgeDir, name))
		if err != nil {
			t.Fatal(err)
		}
		n := bytes.Count(b, []byte("\n")) // as wc -l counts
		counts = append(counts, count{name, n})
		total += n
	}
	if total < maxEdgeLines {
		return
	}
	sort.Slice(counts, func(i, j int) bool {
		if counts[i].lines != counts[j].lines {
			return counts[i].lines > counts[j].lines
		}
		return counts[i].name < counts[j].name
	})
	var per []string
	for _, c := range counts {
		per = append(per, fmt.Sprintf("%s %d", c.name, c.lines))
	}
	t.Errorf("%s has %d lines in non-test files; want fewer than %d: %s",
		edgeDir, total, maxEdgeLines, strings.Join(per, ", "))
}

// TestFunctionLength holds every function in the SIP glue, the wiring and the
// route stage to one screenful, so that a newcomer can read a step of a call
// or a transaction in one place instead of scrolling through a 200-line
// method.
func TestFunctionLength(t *testing.T) {
	for _, dir := range boundedDirs {
		names := sourceFiles(t, dir)
		if len(names) == 0 {
			t.Logf("%s: no non-test Go files; skipped (TestLayering requires the glue packages)", dir)
			continue
		}
		fset := token.NewFileSet()
		for _, name := range names {
			f, err := parser.ParseFile(fset, filepath.Join(root, dir, name), nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok {
					continue
				}
				start := fset.Position(fd.Pos()).Line
				n := fset.Position(fd.End()).Line - start + 1
				if n > maxFuncLines {
					t.Errorf("%s/%s:%d: %s is %d lines; at most %d", dir, name, start, funcName(fd), n, maxFuncLines)
				}
			}
		}
	}
}

// funcName names a declaration as Go docs do: F, T.M or (*T).M.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	typ := fd.Recv.List[0].Type
	star := false
	if s, ok := typ.(*ast.StarExpr); ok {
		star, typ = true, s.X
	}
	// Drop type parameters of a generic receiver: T[K, V] names T.
	switch x := typ.(type) {
	case *ast.IndexExpr:
		typ = x.X
	case *ast.IndexListExpr:
		typ = x.X
	}
	recv := "?"
	if id, ok := typ.(*ast.Ident); ok {
		recv = id.Name
	}
	if star {
		return "(*" + recv + ")." + fd.Name.Name
	}
	return recv + "." + fd.Name.Name
}

// TestNoMutualFileUse holds the files of each bounded package to a direction:
// if a.go uses what b.go declares, b.go must not use what a.go declares. Two
// files that lean on each other are one tangled unit split at random: a reader
// cannot understand either alone, and a later split of the package cannot put
// them in different packages without an import cycle.
func TestNoMutualFileUse(t *testing.T) {
	mod := modulePath(t)
	var dirs []string
	for _, dir := range boundedDirs {
		if len(sourceFiles(t, dir)) == 0 {
			t.Logf("%s: no non-test Go files; skipped (TestLayering requires the glue packages)", dir)
			continue
		}
		dirs = append(dirs, dir)
	}
	if len(dirs) == 0 {
		t.Fatal("none of the bounded packages exists")
	}
	paths := make([]string, len(dirs))
	for i, dir := range dirs {
		paths[i] = mod + "/" + dir
	}
	pkgs, err := loadPackages(root, paths)
	if err != nil {
		t.Fatal(err)
	}
	for i, dir := range dirs {
		pairs, err := mutualFileUse(pkgs, paths[i])
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pairs {
			t.Errorf("%s: %s", dir, p)
		}
	}
}

// listedPackage is the part of `go list -json` output the type-checker needs.
type listedPackage struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	CgoFiles   []string
	Export     string            // compiler export data file
	ImportMap  map[string]string // import path in source -> package import path
}

// loadedPackages are the packages named to loadPackages plus all their
// dependencies, with a gc importer reading the dependencies' export data.
type loadedPackages struct {
	fset   *token.FileSet
	byPath map[string]*listedPackage
	gc     types.Importer
}

// loadPackages runs `go list -export -deps -json` once, in dir, for paths.
// It fails if any of the packages or their dependencies does not compile.
func loadPackages(dir string, paths []string) (*loadedPackages, error) {
	args := append([]string{"list", "-export", "-deps", "-json"}, paths...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	l := &loadedPackages{fset: token.NewFileSet(), byPath: map[string]*listedPackage{}}
	for dec := json.NewDecoder(&stdout); ; {
		p := new(listedPackage)
		if err := dec.Decode(p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %v", err)
		}
		l.byPath[p.ImportPath] = p
	}
	l.gc = importer.ForCompiler(l.fset, "gc", func(path string) (io.ReadCloser, error) {
		p := l.byPath[path]
		if p == nil || p.Export == "" {
			return nil, fmt.Errorf("no export data for %q from go list", path)
		}
		return os.Open(p.Export)
	})
	return l, nil
}

// check type-checks the package with import path path from its source,
// importing its dependencies from export data.
func (l *loadedPackages) check(path string) (*types.Package, *types.Info, error) {
	p := l.byPath[path]
	if p == nil {
		return nil, nil, fmt.Errorf("%s: not in go list output", path)
	}
	if len(p.CgoFiles) > 0 {
		return nil, nil, fmt.Errorf("%s: cgo files %v cannot be type-checked here", path, p.CgoFiles)
	}
	var files []*ast.File
	for _, name := range p.GoFiles {
		f, err := parser.ParseFile(l.fset, filepath.Join(p.Dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, f)
	}
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}}
	conf := types.Config{Importer: importerFunc(func(imp string) (*types.Package, error) {
		if mapped, ok := p.ImportMap[imp]; ok { // vendored or replaced path
			imp = mapped
		}
		return l.gc.Import(imp)
	})}
	pkg, err := conf.Check(path, l.fset, files, info)
	if err != nil {
		return nil, nil, fmt.Errorf("type-check %s: %v", path, err)
	}
	return pkg, info, nil
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

// fileUse is one example of file From using something declared in file To.
type fileUse struct {
	name     string         // identifier as written in From
	at, decl token.Position // where it is used; where its object is declared
}

// mutualFileUse type-checks the package path and returns, sorted, one line
// for each pair of its files that use each other.
//
// File A uses file B (A != B) when an identifier in A refers to a package-level
// func, type, var or const declared in B, to a method declared in B, or to a
// struct field declared in B. types.Info.Uses covers all of these: besides
// plain identifiers it records the selector of every x.f as the selected field
// or method itself (the object of types.Info.Selections[x.f]), so a field
// reached through embedding counts for the file that declares the field.
func mutualFileUse(l *loadedPackages, path string) ([]string, error) {
	pkg, info, err := l.check(path)
	if err != nil {
		return nil, err
	}
	type link struct{ from, to string } // file from uses file to
	uses := map[link]fileUse{}          // the earliest example of each link

	for id, obj := range info.Uses {
		if obj == nil || obj.Pkg() != pkg || !fileLevel(pkg, obj) {
			continue
		}
		at, decl := l.fset.Position(id.Pos()), l.fset.Position(obj.Pos())
		if !decl.IsValid() || at.Filename == decl.Filename {
			continue
		}
		e := link{filepath.Base(at.Filename), filepath.Base(decl.Filename)}
		if old, ok := uses[e]; ok && !before(at, old.at) {
			continue
		}
		uses[e] = fileUse{id.Name, at, decl}
	}

	var out []string
	for e, ab := range uses {
		if e.from > e.to {
			continue // report each pair once, from its first name
		}
		ba, ok := uses[link{e.to, e.from}]
		if !ok {
			continue
		}
		out = append(out, fmt.Sprintf("%s and %s use each other: %s; %s", e.from, e.to, ab, ba))
	}
	sort.Strings(out)
	return out, nil
}

// String reads as "a.go:12 uses Name (b.go:34)".
func (u fileUse) String() string {
	return fmt.Sprintf("%s:%d uses %s (%s:%d)",
		filepath.Base(u.at.Filename), u.at.Line, u.name, filepath.Base(u.decl.Filename), u.decl.Line)
}

// fileLevel reports whether obj is something a file of pkg declares for other
// files: a package-level func, type, var or const, a method, or a struct field.
// Locals, parameters, labels and imported package names are not.
func fileLevel(pkg *types.Package, obj types.Object) bool {
	switch o := obj.(type) {
	case *types.Func:
		return o.Parent() == pkg.Scope() || o.Signature().Recv() != nil
	case *types.Var:
		return o.IsField() || o.Parent() == pkg.Scope()
	case *types.TypeName, *types.Const:
		return o.Parent() == pkg.Scope()
	}
	return false
}

func before(a, b token.Position) bool {
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	return a.Column < b.Column
}

// sourceFiles returns the sorted names of the non-test Go files in dir
// (relative to the repository root), or nil if there are none.
func sourceFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); !e.IsDir() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			out = append(out, n)
		}
	}
	return out
}

// relDir turns a goDirs key into a slash path relative to the root.
func relDir(t *testing.T, dir string) string {
	t.Helper()
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.ToSlash(rel)
}

// modulePath reads the module path from go.mod.
func modulePath(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	t.Fatal("go.mod has no module line")
	return ""
}
