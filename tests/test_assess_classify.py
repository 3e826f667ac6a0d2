"""The fast classification paths give the same answers as running every rule on every line."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

from conftest import commit_all, git

from itest_mcp.tools.changes import Assessment, Evidence, FileAssessment, FileCategory, assess_changes
from itest_mcp.tools.gitdiff import ChangedFile, LineRange, line_range, trusted
from itest_mcp.tools.repo import open_project
from itest_mcp.tools.rules import BUILTIN_RULES, glob_match, glob_regex, literal_needles


def evidence(assessment: Assessment, path: str, category: str) -> set[tuple[int | None, str]]:
    for f in assessment.files:
        if f.path == path:
            for c in f.categories:
                if c.category == category:
                    return {(e.line, e.rule) for e in c.evidence}
    return set()


def test_needles_are_held_by_every_match() -> None:
    """A rule is skipped on a line without one of its needles: that must never hide a match."""
    fragments = [
        "go func() {", "mu.Lock()", "api.github.com", "Authorization: Bearer ", "x-ratelimit-remaining", "retry",
        "Retry-After", "429", "select {", "<-ch", "chan int", "asyncio.gather(", "requests.get(", "os.Getenv(",
        "Sync(", "func (s *S) Run(", "attempts", "BackOff", "LookupHost", "errgroup.Group", "GITHUB_TOKEN", "gh api",
        "exec.Command(\"gh\"", "golang.org/x/oauth2", "timeout=3", "net/http", "KeepAlive:", "tls.Config", " ", "x",
        "(", ")", "\"", "'", "Schedule", "RLock()", "make(chan", "ſ", "K",
    ]  # fmt: skip
    patterns = [(r.pattern, re.IGNORECASE if "i" in r.flags else 0) for r in BUILTIN_RULES if r.pattern]
    patterns += [(r"(?i:hello|wor[lk]d)", 0), (r"(?<=\s)tok\b", 0), (r"ab+c|a(?:x|y)z", 0), (r"\d{3}-\d", 0)]
    rnd = random.Random(7)
    lines = ["".join(rnd.choice(fragments) for _ in range(rnd.randint(1, 6))) for _ in range(3000)]
    for pattern, flags in patterns:
        needles = literal_needles(pattern, flags)
        regex = re.compile(pattern, flags)
        for line in lines:
            if regex.search(line) and needles is not None and line.isascii():
                assert any(n in line.lower() for n in needles), (pattern, line, needles)
    assert literal_needles(r"\d{3}-\d") == frozenset({"-"})
    assert literal_needles(r"[ab]+") is None  # nothing literal: the rule runs on every line


def test_glob_needles_change_no_answer() -> None:
    globs = [g for r in BUILTIN_RULES for g in r.paths] + ["*", "**", "a/*/b", "[abc]*.go", "x?y", "İ*", "gen/**"]
    parts = ["a", "b", "docs", "sync", "x", "tests", ".github", "workflows", "go.mod", "f.go", "f_test.go", "README.md",
             "Makefile", "İx", "config", "c.yml", "test_a.py", "LICENSE", "xzy", "x.txt"]  # fmt: skip
    rnd = random.Random(3)
    for _ in range(5000):
        path = "/".join(rnd.choice(parts) for _ in range(rnd.randint(1, 4)))
        chosen = rnd.sample(globs, rnd.randint(1, 6))
        expected = next((g for g in chosen if glob_regex(g).match(path)), None)
        assert glob_match(path, chosen) == expected, (path, chosen)


def test_repeated_lines_get_their_own_evidence_and_open_comments_still_count(
    make_repo: Callable[..., Path],
) -> None:
    """Identical lines are classified once, but each file keeps its own line numbers and comment state."""
    body = "package p\n\nfunc f() {}\n"
    repo = make_repo({"a/a.go": body, "b/b.go": body, "c/c.go": body})
    git(repo, "checkout", "-q", "-b", "work")
    line = "func spawn(ch chan int) { go func() { ch <- 1 }() }\n"
    (repo / "a/a.go").write_text(body + line, encoding="utf-8")
    (repo / "b/b.go").write_text(body + "\n\n" + line, encoding="utf-8")
    # Inside a block comment the same text is no goroutine; after the comment closes it is one again.
    (repo / "c/c.go").write_text(body + "/*\n" + line + "*/\n" + line, encoding="utf-8")
    commit_all(repo, "work")
    assessment = assess_changes(open_project(repo), import_graph=False)
    both = ("concurrency.goroutine", "concurrency.go-sync")
    assert evidence(assessment, "a/a.go", "concurrency") == {(4, rule) for rule in both}
    assert evidence(assessment, "b/b.go", "concurrency") == {(6, rule) for rule in both}
    assert evidence(assessment, "c/c.go", "concurrency") == {(7, rule) for rule in both}


def test_user_rule_with_a_global_inline_flag(make_repo: Callable[..., Path]) -> None:
    """`(?i)` at the start of a pattern once broke the combined prefilter; each rule now stands alone."""
    config = '[assess]\n[[assess.rules]]\nid = "retry.budget"\ncategory = "retry"\npattern = "(?i)retry_budget"\n'
    repo = make_repo({"itest.toml": config, "p.go": "package p\n"})
    git(repo, "checkout", "-q", "-b", "work")
    (repo / "p.go").write_text("package p\n\nvar Retry_Budget = 3\n", encoding="utf-8")
    commit_all(repo, "work")
    assessment = assess_changes(open_project(repo), import_graph=False)
    assert (3, "retry.budget") in evidence(assessment, "p.go", "retry")


def test_trusted_models_equal_validated_ones() -> None:
    """Models built without validation must be indistinguishable from validated ones (guards pydantic updates)."""
    ranges = [line_range(2, 4)]
    assert ranges == [trusted(LineRange, start=2, end=4)] == [LineRange(start=2, end=4)]
    built = trusted(
        ChangedFile, path="a.go", old_path=None, status="modified", added=3, removed=1, binary=False, ranges=ranges
    )
    valid = ChangedFile(path="a.go", status="modified", added=3, removed=1, ranges=[LineRange(start=2, end=4)])
    assert built == valid
    assert built.model_dump_json() == valid.model_dump_json()
    assert repr(built) == repr(valid)
    assert built.model_copy(update={"added": 5}).added == 5
    ev = trusted(Evidence, file="a.go", line=3, removed=False, text="go f()", match="go f(", rule="r")
    cat = trusted(FileCategory, category="concurrency", findings=1, evidence=[ev])
    fa = FileAssessment(path="a.go", status="modified", categories=[cat])
    assert FileAssessment.model_validate_json(fa.model_dump_json()) == fa
