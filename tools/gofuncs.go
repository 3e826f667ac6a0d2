//go:build ignore

// gofuncs prints, as JSON, the functions of the Go files named on stdin (one per line):
// name (with receiver), first and last line, and the network/retry/concurrency
// constructs each one uses. itest-mcp runs it with `go run` to rank uncovered code.
package main

import (
	"bufio"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"sort"
	"strings"
)

type fn struct {
	File    string   `json:"file"`
	Name    string   `json:"name"`
	Line    int      `json:"line"`
	End     int      `json:"end"`
	Signals []string `json:"signals"`
}

type fileOut struct {
	File  string `json:"file"`
	Error string `json:"error,omitempty"`
	Funcs []fn   `json:"funcs"`
}

var pkgSignals = map[string]string{
	"http": "http", "httptest": "http", "net": "net", "url": "http", "tls": "net", "grpc": "rpc",
	"sync": "sync", "atomic": "sync", "errgroup": "goroutine", "context": "context", "json": "json",
}

func recvName(d *ast.FuncDecl) string {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return d.Name.Name
	}
	t := d.Recv.List[0].Type
	star := ""
	if s, ok := t.(*ast.StarExpr); ok {
		star, t = "*", s.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok {
		t = ix.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return "(" + star + id.Name + ")." + d.Name.Name
	}
	return d.Name.Name
}

func signals(body ast.Node) []string {
	set := map[string]bool{}
	ast.Inspect(body, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.GoStmt:
			set["goroutine"] = true
		case *ast.SelectStmt:
			set["select"] = true
		case *ast.SendStmt:
			set["channel"] = true
		case *ast.SelectorExpr:
			if id, ok := x.X.(*ast.Ident); ok {
				if s, ok := pkgSignals[id.Name]; ok {
					set[s] = true
				}
				if id.Name == "time" && (x.Sel.Name == "Sleep" || x.Sel.Name == "NewTimer" || x.Sel.Name == "After") {
					set["sleep"] = true
				}
			}
			name := strings.ToLower(x.Sel.Name)
			for _, w := range []string{"retry", "backoff", "attempt", "ratelimit", "retryafter", "token", "auth", "timeout", "deadline", "lock", "unlock"} {
				if strings.Contains(name, w) {
					set[w] = true
				}
			}
		case *ast.Ident:
			name := strings.ToLower(x.Name)
			for _, w := range []string{"retry", "backoff", "attempt", "ratelimit", "timeout"} {
				if strings.Contains(name, w) {
					set[w] = true
				}
			}
		case *ast.BasicLit:
			v := strings.ToLower(x.Value)
			if strings.Contains(v, "ratelimit") || strings.Contains(v, "retry-after") {
				set["ratelimit"] = true
			}
			if strings.Contains(v, "authorization") || strings.Contains(v, "bearer") {
				set["auth"] = true
			}
		}
		return true
	})
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func main() {
	fset := token.NewFileSet()
	var out []fileOut
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		path := strings.TrimSpace(sc.Text())
		if path == "" {
			continue
		}
		fo := fileOut{File: path, Funcs: []fn{}}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			fo.Error = err.Error()
		}
		if f != nil {
			for _, decl := range f.Decls {
				d, ok := decl.(*ast.FuncDecl)
				if !ok || d.Body == nil {
					continue
				}
				fo.Funcs = append(fo.Funcs, fn{
					File:    path,
					Name:    recvName(d),
					Line:    fset.Position(d.Pos()).Line,
					End:     fset.Position(d.End()).Line,
					Signals: signals(d),
				})
			}
		}
		out = append(out, fo)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		os.Exit(1)
	}
}
