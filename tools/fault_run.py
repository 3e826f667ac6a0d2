"""Run a phase under injected faults: upstream and proxy up, phase pointed at the proxy, report at the end.

The upstream is the fake GitHub unless `[faults] upstream` names a loopback
host:port; the phase sees the proxy through the variables `[faults] env` names
(GITHUB_API_URL by default; HTTP_PROXY/HTTPS_PROXY or any custom variable work
too). Everything stops when the phase ends, fails, times out or is cancelled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from .errors import FaultError
from .fault_profiles import FAKE_GITHUB, FaultConfig, Profile, Upstream, load_fault_config, parse_upstream
from .fault_report import FaultReport, build_report
from .faults import ConcurrencyProbe, FaultProxy, json_upstream, probe_concurrency
from .models import Model, PhaseRun
from .repo import Project

PROXY_VARS = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"}


class FaultRun(Model):
    """A phase run under a fault profile and the report of what the code under test survived."""

    phase_run: PhaseRun
    report: FaultReport


@dataclass
class FaultSession:
    """A running upstream + proxy and the env that points a phase at it."""

    profile: Profile
    proxy: FaultProxy
    env: dict[str, str]
    notes: list[str] = field(default_factory=list)

    def report(self, phase_run: PhaseRun | None = None) -> FaultReport:
        """The report of the traffic so far (call after the session ended for the final figures)."""
        report = build_report(self.proxy.log, self.profile, env=self.env, phase_run=phase_run)
        report.notes.extend(self.notes)
        return report


def proxy_env(template: dict[str, str], url: str, port: int) -> dict[str, str]:
    """The variables that point a phase at the proxy ({url}, {host}, {port} filled in)."""
    env = {
        name: value.replace("{url}", url).replace("{host}", "127.0.0.1").replace("{port}", str(port))
        for name, value in template.items()
    }
    if PROXY_VARS & set(env):
        # A NO_PROXY inherited from the caller would send loopback traffic around the proxy.
        env.setdefault("NO_PROXY", "")
        env.setdefault("no_proxy", "")
    return env


@asynccontextmanager
async def _upstream(config: FaultConfig, profile: Profile, override: Upstream | None) -> AsyncIterator[Upstream]:
    if override is not None:
        yield override
        return
    target = config.section.upstream
    if target != FAKE_GITHUB:
        yield parse_upstream(target)
        return
    try:
        from .fake_github import start_fake_github
    except ImportError:  # the fake is optional: a minimal JSON API keeps fault runs possible without it
        async with json_upstream() as up:
            yield up
        return
    fake = await anyio.to_thread.run_sync(lambda: start_fake_github("ok", seed=profile.seed))
    try:
        yield parse_upstream(fake.url)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(fake.stop)


@asynccontextmanager
async def fault_session(
    config: FaultConfig, profile_name: str, *, upstream: Upstream | None = None
) -> AsyncIterator[FaultSession]:
    """Start the upstream and the proxy for `profile_name`; yield the session; stop both on the way out."""
    profile = config.profile(profile_name)
    async with _upstream(config, profile, upstream) as up:
        async with FaultProxy(up, profile, port=config.section.port) as proxy:
            env = proxy_env(config.section.env_template(), proxy.url, proxy.port)
            session = FaultSession(profile=profile, proxy=proxy, env=env)
            if PROXY_VARS & set(env):
                session.notes.append(
                    "the phase is pointed through a proxy variable: Go's net/http (and other clients) bypass proxies "
                    "for localhost/127.0.0.1 URLs, so point the client at an API URL variable if no traffic arrives"
                )
            yield session


async def run_phase_with_faults(
    project: Project,
    phase_name: str,
    profile_name: str,
    options: Any,
    *,
    progress: Any = None,
) -> FaultRun:
    """Run `phase_name` with the proxy of `profile_name` in front of its API; return the run and the fault report."""
    from .phases import load_phases

    config = load_fault_config(project)
    config.profile(profile_name)  # an unknown profile fails before anything starts
    load_phases(project).get(phase_name)
    try:
        from .runner import run_phase
    except ImportError as exc:
        raise FaultError("the run engine (tools/runner.py) is not available in this build; cannot run a phase") from exc
    async with fault_session(config, profile_name) as session:
        phase_run = await run_phase(project, phase_name, options, progress=progress, extra_env=session.env)
    report = session.report(phase_run)
    notes = [f"faults {profile_name!r}: {report.summary}"]
    notes += [f"edge case {case.name}: {case.verdict.value} — {case.summary}" for case in report.edge_cases]
    phase_run = phase_run.model_copy(update={"fault_profile": profile_name, "notes": [*phase_run.notes, *notes]})
    _save_beside_run(project, phase_run, report)
    return FaultRun(phase_run=phase_run, report=report)


def _save_beside_run(project: Project, phase_run: PhaseRun, report: FaultReport) -> None:
    """Keep the full fault report in the run folder, so `run_phase(faults=...)` can stay compact."""
    run_dir = project.root / phase_run.artifacts.run_dir
    if run_dir.is_dir():
        (run_dir / "fault_report.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
        (run_dir / "run.json").write_text(phase_run.model_dump_json(indent=2), encoding="utf-8")


async def probe_with_faults(project: Project, profile_name: str, requests: int) -> tuple[ConcurrencyProbe, FaultReport]:
    """Send `requests` concurrent GETs through the profile's proxy (its concurrency cap is the fault) and report."""
    config = load_fault_config(project)
    async with fault_session(config, profile_name) as session:
        probe = await probe_concurrency(session.proxy, requests)
    return probe, session.report()
