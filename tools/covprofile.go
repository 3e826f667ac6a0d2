//go:build ignore

// covprofile reads a Go coverprofile (set, count or atomic; concatenated profiles merge) and
// prints what itest-mcp's Python reader (tools/covgo.py) builds from it, so a large
// profile is read at native speed. It is an accelerator, not a second authority: it accepts
// only well-formed profiles (exactly `name:sl.sc,el.ec stmts count` lines after a mode line)
// and exits 3 on anything else, and the Python reader then reads the file itself and reports
// the problem with its own message.
//
// Usage: covprofile PROFILE [WANTED]
//
// WANTED (optional) lists changed files, one per line: `key<TAB>lo-hi,lo-hi,...`. A profile
// file name matches a key when it equals it or ends with "/"+key (the longest such key wins);
// the blocks of a matched file that meet its line ranges are printed with it.
//
// Output, one record per line; the F line of a file comes before its S and B lines:
//
//	M mode
//	F name<TAB>measured covered blocks repeated key-index(-1: none)
//	S offset length lines     one run of consecutive lines naming the file
//	B sl.sc,el.ec sl el hit   a block meeting the ranges (each block once; hit when any copy ran)
//	E entries                 block lines read
//
// The totals follow the Python reader's rules exactly: a file is "repeated" when it has more
// than one run or a run lists its first block again; only then are blocks counted once
// (statements of the first copy, executed when any copy ran).
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

type section struct {
	offset, length, lines int64
}

type block struct {
	pos        string
	start, end int64
	hit        bool
}

type fileState struct {
	name      []byte
	sections  []section
	measured  int64
	covered   int64
	blocks    int64
	repeated  bool
	key       int // index into wanted, -1 when none
	ranges    [][2]int64
	changed   map[string]int // position token -> index into order
	order     []block
	firstSeen int // output order: first appearance in the profile
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(3)
}

// digits parses an unsigned decimal number at b[i:], returning it and the index after it.
func digits(b []byte, i int) (int64, int, bool) {
	start := i
	var n int64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if i-start >= 18 {
			return 0, i, false
		}
		n = n*10 + int64(b[i]-'0')
		i++
	}
	return n, i, i > start
}

// parseBlock parses "sl.sc,el.ec stmts count" (the part after the name's colon).
func parseBlock(b []byte) (pos []byte, sl, el, stmts, count int64, ok bool) {
	var i int
	var v int64
	if sl, i, ok = digits(b, 0); !ok || i >= len(b) || b[i] != '.' {
		return nil, 0, 0, 0, 0, false
	}
	if _, i, ok = digits(b, i+1); !ok || i >= len(b) || b[i] != ',' {
		return nil, 0, 0, 0, 0, false
	}
	if el, i, ok = digits(b, i+1); !ok || i >= len(b) || b[i] != '.' {
		return nil, 0, 0, 0, 0, false
	}
	if _, i, ok = digits(b, i+1); !ok || i >= len(b) || b[i] != ' ' {
		return nil, 0, 0, 0, 0, false
	}
	pos = b[:i]
	if stmts, i, ok = digits(b, i+1); !ok || i >= len(b) || b[i] != ' ' {
		return nil, 0, 0, 0, 0, false
	}
	if v, i, ok = digits(b, i+1); !ok || i != len(b) {
		return nil, 0, 0, 0, 0, false
	}
	return pos, sl, el, stmts, v, sl >= 1
}

func readWanted(path string) (map[string]int, [][][2]int64) {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("cannot read %s: %v", path, err)
	}
	keys := map[string]int{}
	var ranges [][][2]int64
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		key, spec, found := strings.Cut(line, "\t")
		if !found {
			fail("bad wanted line %q", line)
		}
		var rs [][2]int64
		for _, r := range strings.Split(spec, ",") {
			lo, hi, found := strings.Cut(r, "-")
			a, err1 := strconv.ParseInt(lo, 10, 64)
			b, err2 := strconv.ParseInt(hi, 10, 64)
			if !found || err1 != nil || err2 != nil {
				fail("bad wanted range %q", r)
			}
			rs = append(rs, [2]int64{a, b})
		}
		keys[key] = len(ranges)
		ranges = append(ranges, rs)
	}
	return keys, ranges
}

// match finds the wanted key of a profile file name: the name itself, else its longest suffix after a "/".
func match(name []byte, keys map[string]int) int {
	if len(keys) == 0 {
		return -1
	}
	if k, ok := keys[string(name)]; ok {
		return k
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			if k, ok := keys[string(name[i+1:])]; ok {
				return k
			}
		}
	}
	return -1
}

func (f *fileState) addChanged(pos []byte, sl, el int64, hit bool) {
	for _, r := range f.ranges {
		if sl <= r[1] && el >= r[0] {
			if i, ok := f.changed[string(pos)]; ok {
				if hit {
					f.order[i].hit = true
				}
			} else {
				key := string(pos)
				f.changed[key] = len(f.order)
				f.order = append(f.order, block{key, sl, el, hit})
			}
			return
		}
	}
}

// dedupe recomputes a repeated file's totals with every block counted once, reading its runs again.
func dedupe(fh *os.File, f *fileState) {
	type entry struct {
		stmts int64
		hit   bool
	}
	seen := map[string]int{}
	var entries []entry
	for _, s := range f.sections {
		buf := make([]byte, s.length)
		if _, err := fh.ReadAt(buf, s.offset); err != nil && err != io.EOF {
			fail("cannot reread: %v", err)
		}
		for _, line := range bytes.Split(bytes.TrimRight(buf, "\n"), []byte("\n")) {
			line = bytes.TrimSuffix(line, []byte("\r"))
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			pos, _, _, stmts, count, _ := parseBlock(line[len(f.name)+1:])
			if i, ok := seen[string(pos)]; ok {
				if count > 0 {
					entries[i].hit = true
				}
			} else {
				seen[string(pos)] = len(entries)
				entries = append(entries, entry{stmts, count > 0})
			}
		}
	}
	f.measured, f.covered = 0, 0
	for _, e := range entries {
		f.measured += e.stmts
		if e.hit {
			f.covered += e.stmts
		}
	}
	f.blocks = int64(len(entries))
}

func main() {
	if len(os.Args) < 2 || len(os.Args) > 3 {
		fail("usage: covprofile PROFILE [WANTED]")
	}
	fh, err := os.Open(os.Args[1])
	if err != nil {
		fail("cannot open %s: %v", os.Args[1], err)
	}
	defer fh.Close()
	var keys map[string]int
	var wanted [][][2]int64
	if len(os.Args) == 3 {
		keys, wanted = readWanted(os.Args[2])
	}

	r := bufio.NewReaderSize(fh, 1<<20)
	files := map[string]*fileState{}
	var list []*fileState
	var cur *fileState // the file of the current run
	var runFirst []byte
	var mode string
	var offset, entries int64
	for {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			fail("a line longer than 1 MiB at byte %d", offset)
		}
		if len(line) == 0 && err != nil {
			break
		}
		start := offset
		offset += int64(len(line))
		text := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(text) == 0 || text[0] <= ' ' && len(bytes.TrimSpace(text)) == 0 {
			if err != nil { // blank lines are skipped; like the Python reader, they do not end a run
				break
			}
			continue
		}
		if bytes.HasPrefix(text, []byte("mode:")) {
			m := string(bytes.TrimSpace(text[5:]))
			if m != "set" && m != "count" && m != "atomic" {
				fail("unknown mode %q", m)
			}
			if mode == "" {
				mode = m
			} else if m != mode {
				fail("mixed modes")
			}
			cur = nil
			if err != nil {
				break
			}
			continue
		}
		if mode == "" {
			fail("block line before any mode line")
		}
		colon := bytes.LastIndexByte(text, ':')
		if colon <= 0 {
			fail("not a coverprofile line at byte %d", start)
		}
		name := text[:colon]
		pos, sl, el, stmts, count, ok := parseBlock(text[colon+1:])
		if !ok {
			fail("not a coverprofile line at byte %d", start)
		}
		entries++
		if cur == nil || !bytes.Equal(cur.name, name) {
			// A new run: the name is checked once per run, not per line.
			if i := bytes.IndexByte(name, ':'); i >= 0 && !(i == 1 && isLetter(name[0])) {
				fail("a colon in a file name at byte %d", start)
			}
			if bytes.ContainsAny(name, " \t") {
				fail("whitespace in a file name at byte %d", start)
			}
			f := files[string(name)]
			if f == nil {
				f = &fileState{name: append([]byte(nil), name...), key: -1, firstSeen: len(list)}
				if k := match(name, keys); k >= 0 {
					f.key = k
					f.ranges = wanted[k]
					f.changed = map[string]int{}
				}
				files[string(name)] = f
				list = append(list, f)
			} else {
				f.repeated = true
			}
			f.sections = append(f.sections, section{offset: start})
			cur = f
			runFirst = append(runFirst[:0], pos...)
		} else if bytes.Equal(pos, runFirst) {
			cur.repeated = true // the run lists its first block again (sections repeated back to back)
		}
		s := &cur.sections[len(cur.sections)-1]
		s.length = offset - s.offset
		s.lines++
		cur.measured += stmts
		if count > 0 {
			cur.covered += stmts
		}
		cur.blocks++
		if cur.ranges != nil {
			cur.addChanged(pos, sl, el, count > 0)
		}
		if err != nil {
			break
		}
	}
	if mode == "" {
		fail("no mode line")
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	fmt.Fprintf(out, "M %s\n", mode)
	for _, f := range list {
		if f.repeated {
			dedupe(fh, f)
		}
		rep := 0
		if f.repeated {
			rep = 1
		}
		fmt.Fprintf(out, "F %s\t%d %d %d %d %d\n", f.name, f.measured, f.covered, f.blocks, rep, f.key)
		for _, s := range f.sections {
			fmt.Fprintf(out, "S %d %d %d\n", s.offset, s.length, s.lines)
		}
		for _, b := range f.order {
			hit := 0
			if b.hit {
				hit = 1
			}
			fmt.Fprintf(out, "B %s %d %d %d\n", b.pos, b.start, b.end, hit)
		}
	}
	fmt.Fprintf(out, "E %d\n", entries)
	if err := out.Flush(); err != nil {
		fail("cannot write: %v", err)
	}
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
