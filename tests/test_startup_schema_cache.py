"""The tool schema cache: identical tools/list, real validation on calls, robust to bad or racing cache files."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from itest_mcp.server.app import create_app
from itest_mcp.server.schema_cache import (
    CacheFile,
    DeferredTool,
    SchemaCache,
    SchemaCachedServer,
    cache_key,
    default_cache_file,
    sources_key,
)


async def _listed(app: Any) -> list[dict[str, Any]]:
    async with Client(app) as client:
        return [tool.model_dump(by_alias=True, exclude_none=False) for tool in (await client.list_tools()).tools]


def _read(path: Path) -> CacheFile:
    return CacheFile.model_validate_json(path.read_bytes())


@pytest.fixture
def cache_file(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "tool-schemas.json"


@pytest.fixture
def cache(cache_file: Path) -> SchemaCache:
    # Other engineers edit this tree while tests run: writing must not depend on that here.
    return SchemaCache(cache_file, sources_key(), may_store=lambda: True)


@pytest.mark.anyio
async def test_cached_tools_list_is_identical_to_fresh_generation_for_every_tool(
    demo_repo: Path, cache_file: Path, cache: SchemaCache
):
    fresh = await _listed(create_app(demo_repo, schema_cache=False))
    first = create_app(demo_repo, schema_cache=cache)  # miss: generates and writes
    assert isinstance(first, SchemaCachedServer) and first.cache_hits == 0
    assert cache_file.exists()
    second = create_app(demo_repo, schema_cache=cache)  # hit: every tool from the file
    assert isinstance(second, SchemaCachedServer)
    assert second.cache_hits == len(fresh) >= 13
    assert all(isinstance(second._tool_manager.get_tool(t["name"]), DeferredTool) for t in fresh)
    for listed in (await _listed(first), await _listed(second)):
        assert [t["name"] for t in listed] == [t["name"] for t in fresh]
        for mine, theirs in zip(listed, fresh, strict=True):
            assert mine == theirs, mine["name"]
            assert mine["inputSchema"] == theirs["inputSchema"] and mine["outputSchema"] == theirs["outputSchema"]


@pytest.mark.anyio
async def test_cached_tool_calls_keep_argument_validation_and_structured_output(
    demo_repo: Path, cache_file: Path, cache: SchemaCache
):
    create_app(demo_repo, schema_cache=cache)
    cached = create_app(demo_repo, schema_cache=cache)
    assert isinstance(cached, SchemaCachedServer) and cached.cache_hits > 0
    results = []
    for app in (create_app(demo_repo, schema_cache=False), cached):
        async with Client(app) as client:
            ok = await client.call_tool("list_phases", {})
            bad = await client.call_tool("parse_junit", {"paths": 5})
            results.append((ok, bad))
    (fresh_ok, fresh_bad), (cached_ok, cached_bad) = results
    assert not cached_ok.is_error
    assert cached_ok.structured_content == fresh_ok.structured_content
    assert any(p["name"] == "network-edge-cases" for p in cached_ok.structured_content["phases"])
    assert cached_bad.is_error
    assert "validation error" in cached_bad.content[0].text and "paths" in cached_bad.content[0].text
    assert cached_bad.content[0].text == fresh_bad.content[0].text


@pytest.mark.anyio
@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\xffnot json at all",
        b'{"key": "x", "tools": [',  # torn write
        b'["a list"]',
        b'{"key": "K", "tools": [{"name": "list_phases"}]}',  # right key, missing fields
        b'{"key": "K", "tools": [], "extra": 1}',
    ],
)
async def test_corrupt_cache_is_ignored_and_rewritten(
    demo_repo: Path, cache_file: Path, cache: SchemaCache, content: bytes
):
    cache_file.parent.mkdir(mode=0o700)
    cache_file.write_bytes(content.replace(b'"K"', json.dumps(sources_key()).encode()))
    app = create_app(demo_repo, schema_cache=cache)
    assert isinstance(app, SchemaCachedServer) and app.cache_hits == 0
    assert await _listed(app) == await _listed(create_app(demo_repo, schema_cache=False))
    rewritten = _read(cache_file)
    assert rewritten.key == sources_key() and len(rewritten.tools) >= 13


@pytest.mark.anyio
async def test_stale_cache_from_other_sources_is_ignored_and_rewritten(
    demo_repo: Path, cache_file: Path, cache: SchemaCache
):
    create_app(demo_repo, schema_cache=cache)
    stale = _read(cache_file)
    for tool in stale.tools:  # what an older version of the code would have published
        tool.parameters = {"type": "object", "properties": {"old": {"type": "string"}}}
    cache_file.write_text(stale.model_copy(update={"key": "older-sources"}).model_dump_json())
    app = create_app(demo_repo, schema_cache=cache)
    assert isinstance(app, SchemaCachedServer) and app.cache_hits == 0
    assert await _listed(app) == await _listed(create_app(demo_repo, schema_cache=False))
    assert _read(cache_file).key == sources_key()
    assert "old" not in json.dumps(_read(cache_file).tools[0].parameters)


@pytest.mark.anyio
async def test_cached_tool_no_longer_registered_is_dropped_and_cache_rewritten(
    demo_repo: Path, cache_file: Path, cache: SchemaCache
):
    create_app(demo_repo, schema_cache=cache)
    cached = _read(cache_file)
    ghost = cached.tools[0].model_copy(update={"name": "ghost_tool"})
    cache_file.write_text(cached.model_copy(update={"tools": [*cached.tools, ghost]}).model_dump_json())
    app = create_app(demo_repo, schema_cache=cache)
    names = [t["name"] for t in await _listed(app)]
    assert "ghost_tool" not in names and "list_phases" in names
    assert "ghost_tool" not in {t.name for t in _read(cache_file).tools}


@pytest.mark.anyio
async def test_tampered_schema_is_caught_on_first_call_and_the_cache_deleted(
    demo_repo: Path, cache_file: Path, cache: SchemaCache, caplog: pytest.LogCaptureFixture
):
    create_app(demo_repo, schema_cache=cache)
    cached = _read(cache_file)
    for tool in cached.tools:
        if tool.name == "parse_junit":
            tool.parameters["properties"]["paths"] = {"type": "integer"}
    cache_file.write_text(cached.model_dump_json())
    app = create_app(demo_repo, schema_cache=cache)
    with caplog.at_level(logging.WARNING, logger="itest_mcp.schema_cache"):
        async with Client(app) as client:
            result = await client.call_tool("parse_junit", {"paths": 5})
    # Validation is the SDK's, from the real signature, not the tampered schema.
    assert result.is_error and "validation error" in result.content[0].text
    assert "'parse_junit': cached schemas differ" in caplog.text
    assert not cache_file.exists()
    assert await _listed(create_app(demo_repo, schema_cache=cache)) == await _listed(
        create_app(demo_repo, schema_cache=False)
    )


def test_unwritable_or_foreign_folder_only_costs_the_speed_up(demo_repo: Path, tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # someone else could have planted schemas here
    app = create_app(demo_repo, schema_cache=SchemaCache(shared / "tool-schemas.json", "k", may_store=lambda: True))
    assert isinstance(app, SchemaCachedServer)
    assert not (shared / "tool-schemas.json").exists()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    create_app(
        demo_repo, schema_cache=SchemaCache(blocker / "c.json", "k", may_store=lambda: True)
    )  # mkdir fails: no crash
    assert blocker.read_text() == "not a folder"


@pytest.mark.anyio
async def test_process_running_older_code_than_on_disk_does_not_write(demo_repo: Path, cache_file: Path):
    app = create_app(demo_repo, schema_cache=SchemaCache(cache_file, sources_key(), may_store=lambda: False))
    assert not cache_file.exists()
    assert await _listed(app) == await _listed(create_app(demo_repo, schema_cache=False))


def test_key_follows_source_content(tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.py").write_text("x = 1\n")
    before = cache_key([src])
    assert cache_key([src]) == before
    (src / "a.py").write_text("x = 2\n")
    assert cache_key([src]) != before
    (src / "a.py").write_text("x = 1\n")
    (src / "b.py").write_text("")
    assert cache_key([src]) != before
    assert len(sources_key()) == 32


def test_default_cache_lives_in_the_system_temp_dir():
    path = default_cache_file()
    assert path.is_relative_to(Path(tempfile.gettempdir()))
    assert path.name.startswith("tool-schemas-") and path.suffix == ".json"


WRITER = """
import sys
from pathlib import Path
from itest_mcp.server.schema_cache import CacheFile, SchemaCache
path, key = Path(sys.argv[1]), sys.argv[2]
tools = CacheFile.model_validate_json(Path(sys.argv[3]).read_bytes()).tools
cache = SchemaCache(path, key, may_store=lambda: True)
for _ in range(40):
    cache.store(tools)
"""


def test_concurrent_writers_never_leave_a_torn_or_partial_file(
    demo_repo: Path, cache_file: Path, cache: SchemaCache, tmp_path: Path
):
    create_app(demo_repo, schema_cache=cache)
    source = tmp_path / "source.json"
    source.write_bytes(cache_file.read_bytes())
    cache_file.unlink()
    expected = _read(source)
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(cache_file), expected.key, str(source)]) for _ in range(3)
    ]
    reads = 0
    deadline = time.monotonic() + 60
    while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
        loaded = SchemaCache(cache_file, expected.key).load()
        if loaded is not None:
            assert loaded == expected.tools  # whole file or nothing, never torn
            reads += 1
    for writer in writers:
        assert writer.wait(timeout=60) == 0
    assert reads > 0
    assert _read(cache_file) == expected
    assert [p.name for p in cache_file.parent.iterdir()] == [cache_file.name]  # no temp files left
