"""Tool JSON schemas cached on disk, so a server start does not regenerate them.

Why this exists: the MCP SDK builds every tool with `Tool.from_function`, which runs
pydantic's `TypeAdapter.json_schema()` over the tool's return model to publish its
`outputSchema`. Our result models are large (a `PhaseRun` nests tests, failures, races,
resources ...), so for 13 tools that was 170 ms on a quiet 2-core machine and 400 ms under
load, the biggest part of what itest-mcp added to a bare `MCPServer` start (issue 2 bar:
start to `tools/list` over stdio <= 1.3x the bare server; we measured 1.45-1.55x before).
The schemas only change when our code or the libraries that generate them change, so they
are generated once, written to the system temp dir, and read back on later starts: create_app
went from 170 ms to 19 ms (3.6 ms of it hashing our sources). With `defer_build` on
`tools.models.Model` (nothing validates most models at start-up any more), bench_startup
went from 1.44-1.65x to 1.09-1.23x the bare server (wall median of 7; CPU 1.43-1.48x to
1.18-1.22x). The cold start (first after an upgrade or an edit) still costs ~1.45x.

How it stays correct:
- The cache is keyed by the SDK, pydantic, Python and itest-mcp versions plus a hash of
  every `.py` file of `itest_mcp.server` and `itest_mcp.tools`, taken when this module is
  imported (when the process reads our code); any other key, or a file that is not valid,
  is ignored and rewritten. A process whose sources changed on disk after it loaded them
  (a long pytest session in a tree being edited) does not write: its schemas are old code's.
- A cached tool is a `DeferredTool`: `tools/list` answers from the cached schemas, and on
  its first `tools/call` the tool is built by the SDK's own `Tool.from_function` and the
  call runs through it, so argument validation and structured output are the SDK's. That
  build also checks the cached schemas against the fresh ones; on a difference the cache
  file is deleted (the next start regenerates it) and a warning is logged.
- Writes go to a unique temporary file in the same folder and are renamed over the cache
  (`os.replace`), so concurrent starts never leave a torn file. The folder is per user and
  private (0700); any error reading or writing only costs the speed-up.
Nothing is written outside the system temp dir (DESIGN: state lives in the repo or there).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import pydantic_core
from mcp.server import MCPServer
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.tools.base import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import Icon, ToolAnnotations
from pydantic import ConfigDict, PrivateAttr, ValidationError

from itest_mcp.tools import __version__
from itest_mcp.tools.models import Model
from itest_mcp.tools.usercache import is_private_folder, user_cache_path

log = logging.getLogger("itest_mcp.schema_cache")

# Bump when the file layout or what a cached entry means changes.
CACHE_FORMAT = 1
_PACKAGES = ("itest_mcp.server", "itest_mcp.tools")


class CachedTool(Model):
    """One tool as published by `tools/list`: the parts that are costly to generate."""

    name: str
    parameters: dict[str, Any]
    output_schema: dict[str, Any] | None


class CacheFile(Model):
    """The cache file: valid only for the exact `key` it was written under."""

    key: str
    tools: list[CachedTool]


def cache_key(folders: list[Path] | None = None) -> str:
    """A digest of what the generated schemas depend on: library versions and our sources as they are now."""
    digest = hashlib.blake2b(digest_size=16)
    versions = [
        f"format={CACHE_FORMAT}",
        f"itest-mcp={__version__}",
        f"python={sys.version}",
        f"pydantic={pydantic.VERSION}",
        f"pydantic-core={pydantic_core.__version__}",
    ]
    for dist in ("mcp", "mcp-types"):
        try:
            versions.append(f"{dist}={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{dist}=?")
    digest.update("\n".join(versions).encode())
    for folder in _source_folders() if folders is None else folders:
        for path in sorted(folder.glob("*.py")):
            digest.update(b"\0" + path.name.encode() + b"\0")
            try:
                digest.update(path.read_bytes())
            except OSError:  # deleted since the glob: a key nobody will match, so no cache this time
                digest.update(b"\0unreadable\0")
    return digest.hexdigest()


def _source_folders() -> list[Path]:
    folders = []
    for package in _PACKAGES:
        module = sys.modules.get(package) or __import__(package, fromlist=["_"])
        folders.append(Path(module.__file__ or "").resolve().parent)
    return folders


# Taken when the server package is first imported, which is when (give or take the modules
# imported just before) this process read the code it runs. A long-lived process (a pytest
# session in a tree being edited) must not label schemas of its old code with a newer key.
_SOURCES_KEY = cache_key()


def sources_key() -> str:
    """The cache key of the sources this process loaded (computed at import)."""
    return _SOURCES_KEY


def sources_unchanged() -> bool:
    """Whether the sources on disk are still those this process loaded, so its schemas may be cached."""
    return cache_key() == _SOURCES_KEY


def default_cache_file() -> Path:
    """`<tempdir>/itest-mcp-<uid>/tool-schemas-<install>.json`: per user, one file per installation."""
    install = hashlib.blake2b(
        "\0".join([sys.executable, *map(str, _source_folders())]).encode(), digest_size=6
    ).hexdigest()
    return user_cache_path() / f"tool-schemas-{install}.json"


class SchemaCache:
    """Reads and atomically rewrites one cache file; every failure degrades to 'no cache'."""

    def __init__(self, path: Path, key: str, *, may_store: Callable[[], bool] = sources_unchanged) -> None:
        self.path = path
        self.key = key
        self.may_store = may_store

    def load(self) -> list[CachedTool] | None:
        """The cached tools, or None when the file is missing, unreadable, corrupt or for another key."""
        try:
            raw = self.path.read_bytes()
        except OSError:
            return None
        try:
            cached = CacheFile.model_validate_json(raw)
        except ValidationError as exc:
            log.info("ignoring corrupt tool schema cache %s: %s", self.path, exc.errors()[0]["msg"])
            return None
        if cached.key != self.key:
            log.debug("tool schema cache %s is stale (sources or versions changed)", self.path)
            return None
        return cached.tools

    def store(self, tools: list[CachedTool]) -> None:
        """Write the file under a unique temporary name, then rename it over the cache (atomic)."""
        if not self.may_store():
            log.info("not caching tool schemas: the sources changed since this process loaded them")
            return
        data = CacheFile(key=self.key, tools=tools).model_dump_json().encode()
        try:
            folder = self.path.parent
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not is_private_folder(folder):
                log.warning("not caching tool schemas: %s is not a private folder of this user", folder)
                return
            fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{self.path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp_name, self.path)
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.info("could not write the tool schema cache %s: %s", self.path, exc)

    def invalidate(self) -> None:
        """Delete the file so the next start regenerates it."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.info("could not delete the tool schema cache %s: %s", self.path, exc)


@dataclass(frozen=True)
class _Registration:
    """The arguments of one `add_tool` call, replayed into `Tool.from_function` on first use."""

    fn: Callable[..., Any]
    name: str
    title: str | None
    description: str | None
    annotations: ToolAnnotations | None
    icons: list[Icon] | None
    meta: dict[str, Any] | None
    structured_output: bool | None


class DeferredTool(Tool):
    """A tool listed from cached schemas; the SDK builds the real one on its first call and runs that."""

    # Built with model_construct: the fields come from a validated cache file and a real registration.
    model_config = ConfigDict(defer_build=True)

    _registration: _Registration | None = PrivateAttr(default=None)
    _real: Tool | None = PrivateAttr(default=None)
    _on_mismatch: Callable[[], None] | None = PrivateAttr(default=None)

    @classmethod
    def from_cache(cls, cached: CachedTool, on_mismatch: Callable[[], None]) -> DeferredTool:
        """A placeholder for `cached.name` until `attach` gives it its function."""
        metadata = FuncMetadata.model_construct(arg_model=ArgModelBase, output_schema=cached.output_schema)
        tool = cls.model_construct(
            fn=_unattached,
            name=cached.name,
            title=None,
            description="",
            parameters=cached.parameters,
            fn_metadata=metadata,
            is_async=False,
        )
        tool._on_mismatch = on_mismatch
        return tool

    def attach(self, registration: _Registration) -> None:
        """Take the function and the listed fields from the server's `add_tool` call."""
        self._registration = registration
        self.fn = registration.fn
        self.title = registration.title
        self.description = registration.description or registration.fn.__doc__ or ""
        self.annotations = registration.annotations
        self.icons = registration.icons
        self.meta = registration.meta

    @property
    def attached(self) -> bool:
        """Whether a registration supplied the function."""
        return self._registration is not None

    def real_tool(self) -> Tool:
        """The tool exactly as the SDK builds it (done once, on the first call)."""
        if self._real is None:
            reg = self._registration
            if reg is None:
                raise RuntimeError(f"tool {self.name!r} was listed from the schema cache but never registered")
            real = Tool.from_function(
                reg.fn,
                name=reg.name,
                title=reg.title,
                description=reg.description,
                annotations=reg.annotations,
                icons=reg.icons,
                meta=reg.meta,
                structured_output=reg.structured_output,
            )
            if real.parameters != self.parameters or real.output_schema != self.output_schema:
                log.warning("tool %r: cached schemas differ from the generated ones; cache deleted", self.name)
                if self._on_mismatch is not None:
                    self._on_mismatch()
            self._real = real
        return self._real

    async def run(self, arguments: dict[str, Any], context: Context[Any, Any], convert_result: bool = False) -> Any:
        """Run through the SDK-built tool: its argument validation and output conversion."""
        return await self.real_tool().run(arguments, context, convert_result=convert_result)


def _unattached(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("a cached tool was called before its function was registered")


class SchemaCachedServer(MCPServer[Any]):
    """An `MCPServer` whose `add_tool` takes a tool's schemas from the cache when they are there.

    Call `finish_registration()` after the last `add_tool`: it drops cached tools nobody
    registered and writes the cache when anything had to be generated.
    """

    def __init__(self, cache: SchemaCache, **kwargs: Any) -> None:
        self._schema_cache = cache
        cached = cache.load()
        self._cache_complete = cached is not None
        self._deferred = {tool.name: DeferredTool.from_cache(tool, cache.invalidate) for tool in cached or []}
        self.cache_hits = 0
        super().__init__(tools=list(self._deferred.values()), **kwargs)

    def add_tool(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        title: str | None = None,
        description: str | None = None,
        annotations: ToolAnnotations | None = None,
        icons: list[Icon] | None = None,
        meta: dict[str, Any] | None = None,
        structured_output: bool | None = None,
    ) -> None:
        """Register a tool: from the cached schemas if present, else generated by the SDK."""
        deferred = self._deferred.get(name or fn.__name__)
        if deferred is not None and deferred.attached:
            # A duplicate name: the SDK keeps the first and warns, as without the cache.
            super().add_tool(fn, name=name, title=title, description=description)
            return
        if deferred is not None:
            deferred.attach(
                _Registration(
                    fn=fn,
                    name=deferred.name,
                    title=title,
                    description=description,
                    annotations=annotations,
                    icons=icons,
                    meta=meta,
                    structured_output=structured_output,
                )
            )
            self.cache_hits += 1
            return
        self._cache_complete = False
        super().add_tool(
            fn,
            name=name,
            title=title,
            description=description,
            annotations=annotations,
            icons=icons,
            meta=meta,
            structured_output=structured_output,
        )

    def finish_registration(self) -> None:
        """Drop cached tools that no module registered; write the cache if anything was generated."""
        for name, deferred in list(self._deferred.items()):
            if not deferred.attached:
                self.remove_tool(name)
                del self._deferred[name]
                self._cache_complete = False
        if self._cache_complete:
            return
        # The SDK's own lookup (what `_tool_input_schema` uses): the registered Tool objects.
        tools = self._tool_manager.list_tools()
        self._schema_cache.store(
            [CachedTool(name=t.name, parameters=t.parameters, output_schema=t.output_schema) for t in tools]
        )
        self._cache_complete = True
