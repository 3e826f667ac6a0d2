"""Coverage readers: golden LCOV / JaCoCo / Go inputs and every bad-input case of issue 6."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from itest_mcp.tools.covgo import GO, read_go_profile
from itest_mcp.tools.covlcov import LCOV
from itest_mcp.tools.covmodel import query_files
from itest_mcp.tools.covreaders import read_coverage, sniff_format
from itest_mcp.tools.covspans import merge_spans, subtract_spans
from itest_mcp.tools.covxml import JACOCO
from itest_mcp.tools.errors import CoverageError

FIX = Path(__file__).resolve().parent / "fixtures" / "coverage"
EXPECTED = json.loads((FIX / "expected.json").read_text())


def _totals(path: Path) -> dict[str, list[int]]:
    data = read_coverage(path)
    return {name: list(fd.totals()) for name, fd in data.files.items()}


@pytest.mark.parametrize(("name", "fmt", "key"), [("lcov.info", LCOV, "lcov"), ("jacoco.xml", JACOCO, "jacoco"),
                                                  ("merged.out", GO, "go")])  # fmt: skip
def test_golden_totals(name: str, fmt: str, key: str) -> None:
    assert sniff_format(FIX / name) == fmt
    assert _totals(FIX / name) == EXPECTED[key]


def test_lcov_records_merge_and_functions() -> None:
    fd = read_coverage(FIX / "lcov.info").files["/home/runner/work/app/app/src/net/client.js"]
    measured, uncovered = fd.query(1, 100)
    assert measured == [(3, 5), (12, 14)]
    assert uncovered == [(12, 14)]  # line 5 is covered by the second record
    assert ("retryLater", 12, 0, False) in fd.functions


def test_jacoco_lines_and_methods() -> None:
    fd = read_coverage(FIX / "jacoco.xml").files["org/acme/net/Client.java"]
    assert fd.query(1, 100) == ([(10, 11), (20, 21)], [(20, 21)])
    assert ("retry", 20, 0, False) in fd.functions


def test_go_blocks_repeated_across_profiles_count_once() -> None:
    data = read_coverage(FIX / "merged.out")
    assert data.mode == "count"
    fd = data.files["example.com/app/net/client.go"]
    # Line 7 is shared by a covered and... both blocks are covered after the merge; line 10 never ran.
    assert fd.query(1, 20) == ([(5, 10)], [(10, 10)])


def test_go_partial_line_counts_as_uncovered(tmp_path: Path) -> None:
    p = tmp_path / "p.out"
    p.write_text("mode: set\nm/a.go:3.10,4.20 1 1\nm/a.go:4.20,6.3 1 0\n")
    fd = read_coverage(p).files["m/a.go"]
    assert fd.query(1, 10) == ([(3, 6)], [(4, 6)])


def test_chunk_boundaries_do_not_change_results(tmp_path: Path) -> None:
    rng = random.Random(7)
    lines = ["mode: set"]
    for section in range(3):  # three test binaries with -coverpkg: every block three times
        for f in range(40):
            for b in range(30):
                hit = rng.random() < 0.3 if section else 0
                lines.append(f"example.com/m/p{f % 3}/f{f}.go:{b * 3 + 1}.2,{b * 3 + 2}.9 {1 + b % 4} {int(hit)}")
    p = tmp_path / "big.out"
    p.write_text("\n".join(lines) + "\n")
    whole = {k: v.totals() for k, v in read_go_profile(p).files.items()}
    for size in (64, 1000, 4096, 50_000):
        small = {k: v.totals() for k, v in read_go_profile(p, chunk_size=size, native=False).files.items()}
        assert small == whole
    assert sum(m for m, _ in whole.values()) == sum(1 + b % 4 for b in range(30)) * 40


def test_spans_arithmetic() -> None:
    assert merge_spans([(5, 6), (1, 2), (3, 4), (9, 9)]) == [(1, 6), (9, 9)]
    assert subtract_spans([(1, 10)], [(2, 3), (5, 5), (9, 12)]) == [(1, 1), (4, 4), (6, 8)]


# -- bad input ---------------------------------------------------------------------------------


def test_unknown_format_names_file_and_first_bytes() -> None:
    with pytest.raises(CoverageError) as err:
        read_coverage(FIX / "unknown.bin")
    msg = str(err.value)
    assert "unknown.bin" in msg and "this is a zip" in msg and "no known coverage format" in msg


def test_go_profile_without_mode_line() -> None:
    with pytest.raises(CoverageError, match=r"nomode\.out.*no 'mode:' line.*-coverprofile"):
        read_coverage(FIX / "nomode.out")


def test_go_profile_with_mixed_modes() -> None:
    with pytest.raises(CoverageError) as err:
        read_coverage(FIX / "mixed.out")
    msg = str(err.value)
    assert "mixed.out:3" in msg and "mode: count" in msg and "mode: set" in msg and "same -covermode" in msg


def test_empty_file_and_profile_without_blocks(tmp_path: Path) -> None:
    empty = tmp_path / "coverage.out"
    empty.write_bytes(b"")
    with pytest.raises(CoverageError, match=r"coverage\.out.* is empty.*rerun"):
        read_coverage(empty)
    data = read_coverage(FIX / "modeonly.out")
    assert data.files == {} and data.mode == "atomic"
    assert "holds no coverage blocks" in data.notes[0]


def test_garbage_line_is_reported_with_its_line_number(tmp_path: Path) -> None:
    p = tmp_path / "bad.out"
    p.write_text("mode: set\nm/a.go:1.1,2.2 1 1\nm/a.go:3.1,4.2 one 1\n")
    with pytest.raises(CoverageError, match=r"bad\.out:3: not a coverprofile line"):
        read_coverage(p)


def test_xml_with_entities_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "evil.xml"
    p.write_text(
        '<?xml version="1.0"?><!DOCTYPE coverage [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        '<coverage><packages><package><classes><class filename="x/&b;.py"><lines><line number="1" hits="1"/>'
        "</lines></class></classes></package></packages></coverage>"
    )
    with pytest.raises(CoverageError, match=r"evil\.xml.*declares XML entities"):
        read_coverage(p)


# -- Go positions read back from the profile ------------------------------------------------------


def _slow_query(path: Path, name: str, ranges: list[tuple[int, int]]) -> list[tuple[list, list]]:
    """The answer from a plain per-line parse (the reference for the bulk reader)."""
    blocks: dict[str, tuple[int, int, bool]] = {}
    for line in path.read_text().splitlines()[1:]:
        pos, _w, hits = line.rsplit(" ", 2)
        fname, _, span = pos.rpartition(":")
        if fname != name:
            continue
        start, end = span.split(",")
        old = blocks.get(span)
        blocks[span] = (int(start.split(".")[0]), int(end.split(".")[0]), (old[2] if old else False) or hits != "0")
    out = []
    for lo, hi in ranges:
        measured = [(max(s, lo), min(e, hi)) for s, e, _ in blocks.values() if s <= hi and e >= lo]
        uncovered = [(max(s, lo), min(e, hi)) for s, e, hit in blocks.values() if s <= hi and e >= lo and not hit]
        out.append((merge_spans(measured), merge_spans(uncovered)))
    return out


@pytest.mark.parametrize("shape", ["sorted", "shuffled", "big-numbers", "repeated"])
def test_bulk_position_reader_matches_a_plain_parse(tmp_path: Path, shape: str) -> None:
    rng = random.Random(shape)
    lines = ["mode: count"]
    names = [f"example.com/m/v2.1/p{f}/file_{f}.go" for f in range(6)]
    for name in names:
        blocks = []
        line = 1 if shape != "big-numbers" else 9_999_990
        for _ in range(60):
            end = line + rng.randint(0, 4)
            blocks.append(f"{name}:{line}.{rng.randint(1, 99)},{end}.{rng.randint(1, 99)} {rng.randint(1, 12)} "
                          f"{rng.choice([0, 0, 1, 7, 123456789])}")  # fmt: skip
            line = end + rng.randint(0, 3)
        if shape == "shuffled":
            rng.shuffle(blocks)
        if shape == "repeated":
            blocks += [b.rsplit(" ", 1)[0] + f" {rng.choice([0, 1])}" for b in blocks]
        lines += blocks
    p = tmp_path / "c.out"
    p.write_text("\n".join(lines) + "\n")
    data = read_go_profile(p)
    ranges = [(1, 5), (30, 80), (100, 400), (9_999_995, 10_000_100)]
    asked = [(data.files[n], ranges) for n in names]
    got = query_files(asked)
    for name, answer in zip(names, got, strict=True):
        assert answer == _slow_query(p, name, ranges), name
        assert data.files[name].query_ranges(ranges) == answer


def test_profile_changed_after_reading_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "c.out"
    p.write_text("mode: set\nm/a.go:1.1,2.2 1 1\nm/a.go:3.1,4.2 1 0\n")
    fd = read_go_profile(p).files["m/a.go"]
    assert fd.query(1, 10) == ([(1, 4)], [(3, 4)])
    p.write_text("mode: set\nm/a.go:1.1,2.2 1 1\nm/a.go:3.1,4.2 1 0\nm/b.go:1.1,2.2 1 1\n")
    with pytest.raises(CoverageError, match=r"c\.out.* changed while it was being analysed"):
        fd.query(1, 10)


def test_malformed_positions_are_reported_when_read(tmp_path: Path) -> None:
    p = tmp_path / "c.out"
    p.write_text("mode: set\nm/a.go:1.1,2.2 1 1\nm/a.go:x3.1,4.2 1 0\n")
    fd = read_go_profile(p).files["m/a.go"]
    assert fd.totals() == (2, 1)
    with pytest.raises(CoverageError, match=r"block positions of 'm/a\.go'.*malformed.*regenerate"):
        fd.query(1, 10)


def _many_blocks(p: Path, files: int, blocks_per_file: int) -> Path:
    """A Go profile of `files` files (example.com/m/f<N>.go) of two-line blocks, every other one covered."""
    with open(p, "w") as fh:
        fh.write("mode: set\n")
        for f in range(files):
            fh.writelines(
                f"example.com/m/f{f}.go:{i * 2 + 1}.1,{i * 2 + 2}.5 2 {i % 2}\n" for i in range(blocks_per_file)
            )
    return p


def test_memory_does_not_grow_with_blocks(tmp_path: Path) -> None:
    import tracemalloc

    def peak(blocks_per_file: int) -> int:
        p = _many_blocks(tmp_path / f"p{blocks_per_file}.out", 500, blocks_per_file)
        tracemalloc.start()
        data = read_go_profile(p, chunk_size=1 << 16, native=False)
        query_files([(fd, [(1, 50)]) for fd in data.files.values()])
        used = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return used

    small, big = peak(40), peak(400)  # 20k and 200k blocks over the same 500 files
    assert big < small * 1.3 + 100_000, (small, big)  # kept per block, 10x the blocks would be ~10x


# -- the diff joined while the profile streams -------------------------------------------------


@pytest.mark.parametrize("shape", ["sorted", "shuffled", "big-numbers", "repeated", "overlapping"])
def test_streamed_join_matches_the_read_back_query(tmp_path: Path, shape: str) -> None:
    from itest_mcp.tools.covspans import merge_spans as merge
    from itest_mcp.tools.covspans import span_lines

    rng = random.Random("join-" + shape)
    lines = ["mode: count"]
    names = [f"example.com/m/v2.1/p{f}/file_{f}.go" for f in range(5)]
    for name in names:
        blocks = []
        line = 1 if shape != "big-numbers" else 9_999_990
        for _ in range(80):
            end = line + rng.randint(0, 4) + (rng.randint(0, 30) if shape == "overlapping" else 0)
            # Counts of 8+ digits do not fit the 8-byte lanes: "big-numbers" takes the plain path.
            blocks.append(f"{name}:{line}.{rng.randint(1, 99)},{end}.{rng.randint(1, 99)} {rng.randint(1, 12)} "
                          f"{rng.choice([0, 0, 1, 7, 123456789 if shape == 'big-numbers' else 70])}")  # fmt: skip
            line = (line + rng.randint(0, 3)) if shape == "overlapping" else end + rng.randint(0, 3)
        if shape == "shuffled":
            rng.shuffle(blocks)
        if shape == "repeated":
            blocks += [b.rsplit(" ", 1)[0] + f" {rng.choice([0, 1])}" for b in blocks]
        lines += blocks
    p = tmp_path / "c.out"
    p.write_text("\n".join(lines) + "\n")
    base = 9_999_990 if shape == "big-numbers" else 0
    ranges = {n: [(base + 1, base + 3), (base + 40 + i, base + 60 + i), (base + 150, base + 400)]
              for i, n in enumerate(names[:4])}  # fmt: skip
    asked: list[str] = []
    streamed = read_go_profile(p, chunk_size=4096, native=False, want=lambda n: asked.append(n) or ranges.get(n))
    assert sorted(asked) == sorted(names)  # asked once per file
    plain = read_go_profile(p)
    for name in names:
        fd = streamed.files[name]
        if name not in ranges:
            assert fd.changed is None
            continue
        assert fd.changed is not None and fd.totals() == plain.files[name].totals()
        expected = _slow_query(p, name, ranges[name])
        measured = span_lines(merge([s for m, _u in expected for s in m]))
        uncovered = merge([s for _m, u in expected for s in u])
        assert fd.changed.summary() == (measured, uncovered), name
        assert len(fd.changed.blocks) < 80  # only the blocks meeting the changed lines are kept


def test_streamed_join_merges_two_profiles(tmp_path: Path) -> None:
    from itest_mcp.tools.covmodel import merge_files

    a, b = tmp_path / "a.out", tmp_path / "b.out"
    a.write_text("mode: set\nm/a.go:1.1,3.2 1 0\nm/a.go:4.1,6.2 1 1\nm/a.go:7.1,9.2 1 0\n")
    b.write_text("mode: set\nm/a.go:1.1,3.2 1 1\nm/a.go:4.1,6.2 1 0\nm/a.go:7.1,9.2 1 0\n")
    want = {"m/a.go": [(2, 8)]}.get
    fa = read_go_profile(a, want=want).files["m/a.go"]
    fb = read_go_profile(b, want=want).files["m/a.go"]
    merged = merge_files(fa, fb)
    assert merged.changed is not None
    assert merged.changed.summary() == (7, [(7, 8)])  # a block counts once, covered when either ran it
    assert merged.query(2, 8) == ([(2, 8)], [(7, 8)])  # the read-back query agrees


def test_streamed_join_reports_malformed_positions_of_a_changed_file(tmp_path: Path) -> None:
    p = tmp_path / "c.out"
    p.write_text("mode: set\nm/a.go:1.1,2.2 1 1\nm/a.go:x3.1,4.2 1 0\n")
    with pytest.raises(CoverageError, match=r"c\.out:2: block positions of 'm/a\.go' are malformed.*regenerate"):
        read_go_profile(p, want={"m/a.go": [(1, 5)]}.get)


def test_streamed_join_memory_does_not_grow_with_blocks(tmp_path: Path) -> None:
    import tracemalloc

    def peak(blocks_per_file: int) -> int:
        p = _many_blocks(tmp_path / f"j{blocks_per_file}.out", 300, blocks_per_file)
        want = {f"example.com/m/f{f}.go": [(5, 9), (40, 44)] for f in range(0, 300, 2)}.get
        tracemalloc.start()
        data = read_go_profile(p, chunk_size=1 << 16, want=want, native=False)
        summaries = [fd.changed.summary() for fd in data.files.values() if fd.changed]
        used = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        # f0: blocks of 2 lines, every other one run; (5, 9) meets 5-6 (not run), 7-8, 9-10 (not run).
        assert len(summaries) == 150 and summaries[0] == (10, [(5, 6), (9, 9), (41, 42)])
        return used

    small, big = peak(40), peak(400)  # 12k and 120k blocks over the same 300 files, half of them changed
    assert big < small * 1.3 + 100_000, (small, big)


def test_lane_keys_order_like_line_numbers_across_digit_counts() -> None:
    from itest_mcp.tools.covgodecode import lane_key, lane_positions, lane_value

    numbers = [1, 9, 10, 11, 99, 100, 101, 999, 1000, 9999, 10000, 99999, 100000, 9_999_999]
    keys = [lane_key(n) for n in numbers]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert [lane_value(k) for k in keys] == numbers
    assert lane_key(10_000_000) > keys[-1]  # too wide for a lane: above every lane
    text = "".join(f"m/a.go:{n}.2,{n + 1}.3 1 0\n" for n in numbers[:-1]).encode()
    got = lane_positions(text, len(numbers) - 1)
    assert got is not None and got[0] == keys[:-1] and got[1] == [lane_key(n + 1) for n in numbers[:-1]]
