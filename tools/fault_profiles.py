"""Fault profiles: the faults a proxy injects, where it forwards to, and how a phase is pointed at it.

A profile is a named list of faults. Built-in profiles (`flaky-network`,
`rate-limited`, `degraded-api`, `partition`) always exist; `[faults.profiles.<name>]`
in itest.toml adds or replaces them. Every fault fires on a schedule that repeats
run after run: the first N opportunities, every Nth, or a seeded random draw, so
two runs with the same seed inject the same faults in the same order.

    [faults]
    upstream = "fake-github"          # or "127.0.0.1:8080" / "http://127.0.0.1:8080"
    env = ["GITHUB_API_URL"]          # or {GITHUB_API_URL = "{url}/api/v3"}; HTTP_PROXY works too

    [faults.profiles.my-profile]
    seed = 7
    faults = [
      {kind = "http_status", status = 503, first = 2},
      {kind = "latency", latency_ms = 200, jitter_ms = 50, probability = 0.3},
    ]
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from .config import RawConfig, check_regex, load_raw_config, validate_section
from .errors import FaultError
from .models import Model
from .repo import Project

STALL_LIMIT_S = 300.0
"""The longest a stall may hold a request: a run must end even when the client has no timeout."""

PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_ENV = {"GITHUB_API_URL": "{url}"}
FAKE_GITHUB = "fake-github"


class FaultKind(StrEnum):
    """What a fault does."""

    LATENCY = "latency"
    """Delay before relaying (latency_ms ± jitter_ms)."""
    BANDWIDTH = "bandwidth"
    """Relay at rate_kbps kilobytes per second."""
    STALL = "stall"
    """Hold the request without an answer for stall_s (the client's timeout should fire first)."""
    RESET = "reset"
    """Reset the client connection (TCP RST)."""
    CLOSE_AFTER = "close_after"
    """Relay after_bytes bytes, then close both sides."""
    DOWN = "down"
    """Refuse the connection (accepted and reset at once, as a dead service looks)."""
    SLOW_HEADERS = "slow_headers"
    """Send the response head one line at a time, interval_ms apart."""
    HTTP_STATUS = "http_status"
    """Answer with status, headers and body instead of forwarding (HTTP mode)."""
    BAD_JSON = "bad_json"
    """Forward, then truncate or corrupt the JSON body (HTTP mode)."""
    CONCURRENCY_CAP = "concurrency_cap"
    """At most max_concurrent requests in flight; the rest queue or are rejected (HTTP mode)."""


class Direction(StrEnum):
    """Which way the fault acts: on the request (toward the server) or the response (toward the client)."""

    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"


class ProxyMode(StrEnum):
    HTTP = "http"
    TCP = "tcp"


HTTP_ONLY = {FaultKind.HTTP_STATUS, FaultKind.BAD_JSON, FaultKind.CONCURRENCY_CAP, FaultKind.SLOW_HEADERS}
CONNECTION_LEVEL = {FaultKind.DOWN}


class Fault(Model):
    """One fault with its schedule. Opportunities are requests (HTTP mode) or connections (TCP mode, `down`)."""

    kind: FaultKind
    name: str = ""
    """A label for the report; defaults to the kind and its position (e.g. "http_status#1")."""
    direction: Direction = Direction.DOWNSTREAM
    path: str | None = None
    """Only requests whose path matches this regular expression (HTTP mode); all when unset."""
    # schedule
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    every: int | None = Field(default=None, ge=1)
    first: int | None = Field(default=None, ge=1)
    after: int = Field(default=0, ge=0)
    """Skip this many opportunities before the schedule starts."""
    seed: int | None = None
    """The random draw's seed; the profile's seed when unset."""
    # parameters
    latency_ms: float = Field(default=0.0, ge=0.0, le=60_000.0)
    jitter_ms: float = Field(default=0.0, ge=0.0, le=60_000.0)
    rate_kbps: float | None = Field(default=None, gt=0.0)
    stall_s: float = Field(default=30.0, gt=0.0, le=STALL_LIMIT_S)
    after_bytes: int = Field(default=0, ge=0)
    interval_ms: float = Field(default=200.0, ge=0.0, le=60_000.0)
    status: int = Field(default=503, ge=100, le=599)
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    retry_after_s: int | None = Field(default=None, ge=0)
    ratelimit_reset_s: int | None = Field(default=None, ge=0)
    """Adds x-ratelimit-remaining: 0 and x-ratelimit-reset = now + this (GitHub's primary limit)."""
    body_mode: str = Field(default="truncated", pattern="^(truncated|malformed)$")
    max_concurrent: int = Field(default=4, ge=1, le=10_000)
    over_cap: str = Field(default="queue", pattern="^(queue|reject)$")

    @field_validator("path")
    @classmethod
    def _path_regex(cls, value: str | None) -> str | None:
        return check_regex("path", value)

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", key) or "\r" in text or "\n" in text:
                raise ValueError(f"header {key!r} is not a valid HTTP header name/value")
        return value

    @model_validator(mode="after")
    def _needs(self) -> Fault:
        if self.kind is FaultKind.BANDWIDTH and self.rate_kbps is None:
            raise ValueError("a bandwidth fault needs rate_kbps (kilobytes per second, > 0)")
        if self.kind is FaultKind.LATENCY and self.latency_ms == 0 and self.jitter_ms == 0:
            raise ValueError("a latency fault needs latency_ms (milliseconds, >= 0) or jitter_ms")
        return self

    def label(self, index: int) -> str:
        return self.name or f"{self.kind.value}#{index + 1}"

    def describe(self) -> str:
        """One line saying what the fault does and when."""
        k = self.kind
        what = {
            FaultKind.LATENCY: f"+{self.latency_ms:g} ms ± {self.jitter_ms:g} ms",
            FaultKind.BANDWIDTH: f"{self.rate_kbps or 0:g} KB/s",
            FaultKind.STALL: f"stall {self.stall_s:g} s",
            FaultKind.RESET: "reset the connection",
            FaultKind.CLOSE_AFTER: f"close after {self.after_bytes} bytes",
            FaultKind.DOWN: "refuse the connection",
            FaultKind.SLOW_HEADERS: f"response head one line per {self.interval_ms:g} ms",
            FaultKind.HTTP_STATUS: f"answer {self.status}"
            + (f" retry-after {self.retry_after_s}" if self.retry_after_s is not None else "")
            + (" x-ratelimit-remaining 0" if self.ratelimit_reset_s is not None else ""),
            FaultKind.BAD_JSON: f"{self.body_mode} JSON body",
            FaultKind.CONCURRENCY_CAP: f"at most {self.max_concurrent} in flight ({self.over_cap} the rest)",
        }[k]
        when = []
        if self.after:
            when.append(f"after {self.after}")
        if self.first:
            when.append(f"first {self.first}")
        if self.every:
            when.append(f"every {self.every}")
        if self.probability < 1:
            when.append(f"p={self.probability:g}")
        if self.path:
            when.append(f"path ~ {self.path}")
        return f"{what} on the {self.direction.value} side" + (f" ({', '.join(when)})" if when else "")


class Profile(Model):
    """A named list of faults with its seed."""

    name: str = ""
    description: str = ""
    seed: int = 0
    mode: ProxyMode = ProxyMode.HTTP
    faults: list[Fault] = Field(default_factory=list)
    builtin: bool = False

    @model_validator(mode="after")
    def _mode_fits(self) -> Profile:
        if self.mode is ProxyMode.TCP:
            for fault in self.faults:
                if fault.kind in HTTP_ONLY:
                    raise ValueError(f'fault kind {fault.kind.value!r} needs mode = "http" (this profile is tcp)')
        return self


class Upstream(Model):
    """Where the proxy forwards: always a loopback host and port."""

    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class FaultsSection(Model):
    """The `[faults]` table of itest.toml."""

    upstream: str = FAKE_GITHUB
    env: list[str] | dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ENV))
    port: int = Field(default=0, ge=0, le=65535)
    """The proxy's port on 127.0.0.1; 0 picks a free one."""
    profiles: dict[str, Profile] = Field(default_factory=dict)

    @field_validator("env")
    @classmethod
    def _env(cls, value: list[str] | dict[str, str]) -> list[str] | dict[str, str]:
        names = value if isinstance(value, list) else list(value)
        if not names:
            raise ValueError('env names no variable; list the variables the phase reads, e.g. ["GITHUB_API_URL"]')
        for name in names:
            if not ENV_NAME.match(name):
                raise ValueError(f"env variable name {name!r} is not a valid name")
        if isinstance(value, dict):
            for name, template in value.items():
                if "{url}" not in template and "{host}" not in template and "{port}" not in template:
                    raise ValueError(f"env {name} = {template!r} does not use {{url}}, {{host}} or {{port}}")
        return value

    @field_validator("upstream")
    @classmethod
    def _upstream(cls, value: str) -> str:
        if value != FAKE_GITHUB:
            try:
                parse_upstream(value)
            except FaultError as exc:
                raise ValueError(f'{exc} (or write "{FAKE_GITHUB}")') from None
        return value

    def env_template(self) -> dict[str, str]:
        return {name: "{url}" for name in self.env} if isinstance(self.env, list) else dict(self.env)


class ProfileInfo(Model):
    """A profile as `list_fault_profiles` shows it."""

    name: str
    description: str
    builtin: bool
    seed: int
    mode: ProxyMode
    faults: list[str]


class ProfileListing(Model):
    """Every fault profile of the project, the upstream and the variables a phase is pointed through."""

    config_file: str | None
    upstream: str
    env: dict[str, str]
    profiles: list[ProfileInfo]


class FaultConfig(Model):
    """The validated `[faults]` section with the built-in profiles merged in."""

    section: FaultsSection
    profiles: dict[str, Profile]
    config_file: str = ""

    def profile(self, name: str) -> Profile:
        """The profile called `name`, or FaultError listing the known ones."""
        if name not in self.profiles:
            known = ", ".join(sorted(self.profiles))
            raise FaultError(
                f"unknown fault profile {name!r}; known profiles: {known} "
                "(add [faults.profiles.<name>] to itest.toml for your own)"
            )
        return self.profiles[name]

    def listing(self) -> ProfileListing:
        return ProfileListing(
            config_file=self.config_file or None,
            upstream=self.section.upstream,
            env=self.section.env_template(),
            profiles=[
                ProfileInfo(
                    name=p.name,
                    description=p.description,
                    builtin=p.builtin,
                    seed=p.seed,
                    mode=p.mode,
                    faults=[f"{f.label(i)}: {f.describe()}" for i, f in enumerate(p.faults)],
                )
                for p in sorted(self.profiles.values(), key=lambda p: (not p.builtin, p.name))
            ],
        )


def parse_upstream(value: str) -> Upstream:
    """A loopback host:port from "127.0.0.1:8080", "http://localhost:8080" or "[::1]:80"; anything else is refused."""
    text = value.strip()
    match = re.fullmatch(r"(?:http://)?(\[[^\]]+\]|[^:/\s]+):(\d{1,5})/?", text)
    if not match:
        raise FaultError(
            f'upstream {value!r} is not host:port; write it as "127.0.0.1:8080" or "http://127.0.0.1:8080" '
            "(https upstreams are not supported: the proxy speaks plain HTTP on loopback)"
        )
    host, port = match.group(1).strip("[]"), int(match.group(2))
    if not 1 <= port <= 65535:
        raise FaultError(f"upstream {value!r} has port {port}, outside 1-65535")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise FaultError(
            f"upstream {value!r} is refused: {host!r} is not a loopback address, and the fault proxy only forwards "
            "to 127.0.0.1 so no test traffic leaves the machine; run the service locally or use the fake GitHub"
        ) from None
    if not address.is_loopback:
        raise FaultError(
            f"upstream {value!r} is refused: {host} is not a loopback address, and the fault proxy only forwards "
            "to 127.0.0.1 so no test traffic leaves the machine; run the service locally or use the fake GitHub"
        )
    return Upstream(host=str(address), port=port)


def _f(**kw: Any) -> Fault:
    return Fault.model_validate(kw)


BUILTIN_PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="flaky-network",
            description="Intermittent transport trouble: slow, reset and cut-off connections at random (seeded).",
            seed=1,
            faults=[
                _f(kind="latency", latency_ms=50, jitter_ms=25, probability=0.5),
                _f(kind="reset", probability=0.2),
                _f(kind="close_after", after_bytes=64, probability=0.1),
            ],
            builtin=True,
        ),
        Profile(
            name="rate-limited",
            description="GitHub rate limits: a 429 with retry-after, then a 403 with x-ratelimit-remaining 0.",
            seed=2,
            faults=[
                _f(kind="http_status", status=429, retry_after_s=1, first=1, body='{"message":"slow down"}'),
                _f(
                    kind="http_status",
                    status=403,
                    ratelimit_reset_s=1,
                    after=2,
                    first=1,
                    body='{"message":"API rate limit exceeded"}',
                ),
            ],
            builtin=True,
        ),
        Profile(
            name="degraded-api",
            description="A struggling API: every third request 502/503/504, slow head, some bodies cut short.",
            seed=3,
            faults=[
                _f(kind="http_status", status=503, every=3),
                _f(kind="http_status", status=502, first=1),
                _f(kind="http_status", status=504, after=4, every=5),
                _f(kind="latency", latency_ms=150, jitter_ms=50, probability=0.3),
                _f(kind="bad_json", body_mode="truncated", after=1, every=7),
                _f(kind="concurrency_cap", max_concurrent=2, over_cap="queue"),
            ],
            builtin=True,
        ),
        Profile(
            name="partition",
            description="The API drops off the network: first connections refused, then one request stalls.",
            seed=4,
            faults=[
                _f(kind="down", first=2),
                _f(kind="stall", stall_s=5, first=1),
            ],
            builtin=True,
        ),
    )
}


def load_fault_config(project: Project) -> FaultConfig:
    """The `[faults]` section validated (errors name file, key and line) with the built-in profiles merged in."""
    raw = load_raw_config(project)
    return fault_config_from_raw(raw)


def fault_config_from_raw(raw: RawConfig) -> FaultConfig:
    """Validate a raw config's `[faults]` table."""
    table = raw.section("faults")
    section = validate_section(raw, ("faults",), table, FaultsSection)
    profiles = dict(BUILTIN_PROFILES)
    for name, profile in section.profiles.items():
        if not PROFILE_NAME.match(name):
            raise raw.error(
                f"profile name {name!r} must be letters, digits, '-', '_', '.' (max 64)", ("faults", "profiles", name)
            )
        if not profile.faults:
            raise raw.error(
                f'profile {name!r} has no faults; add faults = [{{kind = "latency", latency_ms = 100}}]',
                ("faults", "profiles", name),
            )
        profiles[name] = profile.model_copy(update={"name": name, "builtin": False})
    return FaultConfig(section=section, profiles=profiles, config_file=raw.file)
