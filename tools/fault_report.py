"""What the code under test survived: the fault proxy's log turned into figures and verdicts.

Requests to the same method and path are grouped into chains: a request joins
the open chain of its key when the chain's last attempt failed and had ended
before it started (that is a retry); a success closes the chain. From the
chains come the retry figures (attempts, the spacing between them, whether the
spacing grew, whether `retry-after` was waited out, whether the client gave
up), and from those a verdict per edge case with its evidence. A run in which
no traffic reached the proxy says so instead of claiming anything survived.
"""

from __future__ import annotations

import statistics
from enum import StrEnum

from pydantic import Field

from .fault_profiles import FaultKind, Profile
from .faults import ProxyLog, RequestRecord
from .models import Model, PhaseRun

IMMEDIATE_S = 0.02
"""A retry sooner than this after the failure is a tight loop, not a backoff."""
RETRYABLE_STATUS = {429, 500, 502, 503, 504}
CONNECTION_LIMIT = 50
CHAIN_LIMIT = 50


class Verdict(StrEnum):
    SURVIVED = "survived"
    FAILED = "failed"
    NOT_EXERCISED = "not-exercised"
    NO_TRAFFIC = "no-traffic"


class FaultCount(Model):
    """How often one fault had the chance to fire and how often it was injected."""

    fault: str
    kind: FaultKind
    description: str
    opportunities: int
    injected: int


class RequestLine(Model):
    """One request of a connection, compact."""

    index: int
    at_s: float
    method: str
    path: str
    status: int | None
    outcome: str
    faults: list[str] = Field(default_factory=list)
    duration_ms: float | None = None


class ClientConnection(Model):
    """One client connection with the requests it made."""

    id: int
    opened_s: float
    closed_s: float | None
    refused: bool
    tunnel: str | None = None
    requests: list[RequestLine] = Field(default_factory=list)


class RequestChain(Model):
    """One logical operation: the first try and every retry of it."""

    method: str
    path: str
    attempts: int
    requests: list[int]
    outcomes: list[str]
    gaps_s: list[float] = Field(default_factory=list)
    """Time from the end of each failed attempt to the start of the next."""
    retry_after_s: list[float | None] = Field(default_factory=list)
    """What each failed attempt's response asked the client to wait."""
    succeeded: bool
    gave_up: bool
    backoff: str
    """immediate | constant | growing | waited | none."""
    retry_after_honoured: bool | None = None


class RetryFigures(Model):
    """The numbers that tell a careful client from a careless one."""

    failed_attempts: int = 0
    chains_with_failures: int = 0
    retried_chains: int = 0
    recovered_chains: int = 0
    gave_up_chains: int = 0
    gave_up_after: list[int] = Field(default_factory=list)
    max_attempts: int = 0
    gaps_s: list[float] = Field(default_factory=list)
    min_gap_s: float | None = None
    median_gap_s: float | None = None
    immediate_retries: int = 0
    growing_chains: int = 0
    retry_after_asked: int = 0
    retry_after_honoured: int = 0
    retry_after_ignored: int = 0
    stalls: int = 0
    client_timeouts: int = 0
    client_timeout_after_s: list[float] = Field(default_factory=list)
    waited_full_stall: int = 0
    refused_connections: int = 0
    reconnect_gaps_s: list[float] = Field(default_factory=list)
    max_in_flight: int = 0
    queued: int = 0
    max_queue_ms: float = 0.0
    rejected: int = 0


class EdgeCase(Model):
    """A verdict on one edge case with the evidence behind it."""

    name: str
    verdict: Verdict
    summary: str
    evidence: list[str] = Field(default_factory=list)


class PhaseSummary(Model):
    """The phase result beside the fault report."""

    run_id: str
    status: str
    exit_code: int | None = None
    tests: int = 0
    passed: int = 0
    failed: int = 0
    failures: list[str] = Field(default_factory=list)


class FaultReport(Model):
    """The report of a fault run: injections, traffic per connection, retry figures and verdicts."""

    profile: str
    seed: int
    proxy_url: str
    upstream: str
    env: dict[str, str] = Field(default_factory=dict)
    traffic: bool
    verdict: Verdict
    summary: str
    requests: int = 0
    connections_total: int = 0
    injected_total: int = 0
    injections: list[FaultCount] = Field(default_factory=list)
    injection_order: list[str] = Field(default_factory=list)
    """The first 100 injections as "fault@request" in the order they happened (the seeded sequence)."""
    figures: RetryFigures = Field(default_factory=RetryFigures)
    edge_cases: list[EdgeCase] = Field(default_factory=list)
    chains: list[RequestChain] = Field(default_factory=list)
    connections: list[ClientConnection] = Field(default_factory=list)
    phase: PhaseSummary | None = None
    notes: list[str] = Field(default_factory=list)


def _faulted_failure(r: RequestRecord, bad_json: set[str]) -> bool:
    return r.outcome != "ok" or any(f in bad_json for f in r.faults)


def build_chains(log: ProxyLog, bad_json_faults: set[str]) -> list[RequestChain]:
    """Group requests into first tries and retries (see the module docstring)."""
    open_chains: dict[tuple[str, str], list[list[RequestRecord]]] = {}
    chains: list[list[RequestRecord]] = []
    for r in sorted(log.requests, key=lambda r: (r.started_s, r.index)):
        if r.method == "CONNECT":
            continue
        key = (r.method, r.path)
        candidates = open_chains.setdefault(key, [])
        joined = None
        for chain in candidates:
            last = chain[-1]
            if last.ended_s is not None and last.ended_s <= r.started_s + 1e-6:
                joined = chain
                break
        if joined is None:
            joined = [r]
            chains.append(joined)
            candidates.append(joined)
        else:
            joined.append(r)
        failed = _faulted_failure(r, bad_json_faults) or (r.status is not None and r.status >= 400)
        if not failed:
            candidates.remove(joined)
    return [_chain_model(c, bad_json_faults) for c in chains]


def _chain_model(chain: list[RequestRecord], bad_json: set[str]) -> RequestChain:
    gaps: list[float] = []
    asked: list[float | None] = []
    honoured: bool | None = None
    for prev, nxt in zip(chain, chain[1:], strict=False):
        gap = round(max(0.0, nxt.started_s - (prev.ended_s or prev.started_s)), 4)
        gaps.append(gap)
        asked.append(prev.retry_after_s)
        if prev.retry_after_s is not None and prev.retry_after_s >= 0.5:
            ok = gap >= prev.retry_after_s * 0.9 - 0.05
            honoured = ok if honoured is None else honoured and ok
    last = chain[-1]
    succeeded = not (_faulted_failure(last, bad_json) or (last.status is not None and last.status >= 400))
    plain = [g for g, a in zip(gaps, asked, strict=True) if a is None or a < 0.5]
    if not gaps:
        backoff = "none"
    elif plain and all(g < IMMEDIATE_S for g in plain):
        backoff = "immediate"
    elif len(plain) >= 2 and all(b >= a * 1.3 and b >= IMMEDIATE_S for a, b in zip(plain, plain[1:], strict=False)):
        backoff = "growing"
    elif len(plain) >= 2:
        backoff = "constant"
    else:
        backoff = "waited"
    return RequestChain(
        method=chain[0].method,
        path=chain[0].path,
        attempts=len(chain),
        requests=[r.index for r in chain],
        outcomes=[r.outcome if r.status is None else f"{r.outcome}:{r.status}" for r in chain],
        gaps_s=gaps,
        retry_after_s=asked,
        succeeded=succeeded,
        gave_up=not succeeded,
        backoff=backoff,
        retry_after_honoured=honoured,
    )


def _fmt(values: list[float], limit: int = 8) -> str:
    shown = ", ".join(f"{v:.3f}" for v in values[:limit])
    return shown + (f", … ({len(values)} in all)" if len(values) > limit else "")


def build_report(
    log: ProxyLog,
    profile: Profile,
    *,
    env: dict[str, str] | None = None,
    phase_run: PhaseRun | None = None,
) -> FaultReport:
    """The fault report for one proxy log (and the phase run it served, when there was one)."""
    labels = [f.label(i) for i, f in enumerate(profile.faults)]
    counts = {label: 0 for label in labels}
    for inj in log.injections:
        counts[inj.fault] = counts.get(inj.fault, 0) + 1
    injections = [
        FaultCount(
            fault=labels[i],
            kind=f.kind,
            description=f.describe(),
            opportunities=log.opportunities.get(labels[i], 0),
            injected=counts[labels[i]],
        )
        for i, f in enumerate(profile.faults)
    ]
    bad_json = {labels[i] for i, f in enumerate(profile.faults) if f.kind is FaultKind.BAD_JSON}
    by_index = {r.index: r for r in log.requests}
    connections = [
        ClientConnection(
            id=c.id,
            opened_s=c.opened_s,
            closed_s=c.closed_s,
            refused=c.refused,
            tunnel=c.tunnel,
            requests=[
                RequestLine(
                    index=r.index,
                    at_s=r.started_s,
                    method=r.method,
                    path=r.path,
                    status=r.status,
                    outcome=r.outcome,
                    faults=r.faults,
                    duration_ms=round((r.ended_s - r.started_s) * 1000, 3) if r.ended_s is not None else None,
                )
                for r in (by_index[i] for i in c.requests if i in by_index)
            ],
        )
        for c in log.connections[:CONNECTION_LIMIT]
    ]
    chains = build_chains(log, bad_json)
    figures = _figures(log, chains)
    traffic = bool(log.connections)
    report = FaultReport(
        profile=profile.name,
        seed=profile.seed,
        proxy_url=log.url,
        upstream=log.upstream,
        env=env or {},
        traffic=traffic,
        verdict=Verdict.NO_TRAFFIC,
        summary="",
        requests=len(log.requests) + log.dropped_records,
        connections_total=len(log.connections),
        injected_total=len(log.injections),
        injections=injections,
        injection_order=[
            f"{i.fault}@{i.request if i.request is not None else 'conn' + str(i.connection)}"
            for i in log.injections[:100]
        ],
        figures=figures,
        chains=chains[:CHAIN_LIMIT],
        connections=connections,
        phase=_phase_summary(phase_run) if phase_run else None,
    )
    if len(log.connections) > CONNECTION_LIMIT:
        report.notes.append(f"showing the first {CONNECTION_LIMIT} of {len(log.connections)} connections")
    if log.dropped_records:
        report.notes.append(f"{log.dropped_records} requests were counted but not recorded (record limit)")
    if not traffic:
        names = ", ".join(f"${k}" for k in (env or {})) or "the configured variables"
        report.summary = (
            f"no traffic reached the proxy at {log.url}: the phase does not read {names} (or never called the API), "
            "so nothing was tested under faults — this is not a pass. Point the code under test at that variable, "
            "or set [faults] env to the variable it does read."
        )
        report.edge_cases = [
            EdgeCase(name=n, verdict=Verdict.NO_TRAFFIC, summary="no traffic reached the proxy")
            for n in ("connection timeouts", "intermittent failures", "retry mechanisms", "concurrent request handling")
        ]
        if phase_run is not None:
            report.notes.append(f"the phase itself ended {phase_run.status.value}, without touching the proxy")
        return report
    report.edge_cases = [
        _timeouts(log, figures),
        _intermittent(chains, figures),
        _retries(chains, figures),
        _concurrency(chains, figures),
    ]
    exercised = [e for e in report.edge_cases if e.verdict is not Verdict.NOT_EXERCISED]
    phase_failed = phase_run is not None and phase_run.status.value != "passed"
    if any(e.verdict is Verdict.FAILED for e in exercised) or (exercised and phase_failed):
        report.verdict = Verdict.FAILED
    elif exercised:
        report.verdict = Verdict.SURVIVED
    else:
        report.verdict = Verdict.NOT_EXERCISED
    failed_cases = [e.name for e in exercised if e.verdict is Verdict.FAILED]
    report.summary = (
        f"{report.requests} requests on {len(log.connections)} connections, {len(log.injections)} faults injected; "
        + (
            f"failed: {', '.join(failed_cases)}"
            if failed_cases
            else ("survived every exercised edge case" if exercised else "no fault touched the traffic")
        )
        + (f"; phase {phase_run.status.value}" if phase_run is not None else "")
    )
    return report


def _phase_summary(run: PhaseRun) -> PhaseSummary:
    t = run.report.totals
    return PhaseSummary(
        run_id=run.run_id,
        status=run.status.value,
        exit_code=run.exit_code,
        tests=t.tests,
        passed=t.passed,
        failed=t.failed + t.errors,
        failures=[f.test for f in run.report.failures[:10]],
    )


def _figures(log: ProxyLog, chains: list[RequestChain]) -> RetryFigures:
    fig = RetryFigures()
    for chain in chains:
        failed_here = sum(1 for o in chain.outcomes if not o.startswith("ok"))
        fig.failed_attempts += failed_here if chain.succeeded else failed_here
        if failed_here or chain.gave_up:
            fig.chains_with_failures += 1
        if chain.attempts > 1:
            fig.retried_chains += 1
            if chain.succeeded:
                fig.recovered_chains += 1
        if chain.gave_up:
            fig.gave_up_chains += 1
            fig.gave_up_after.append(chain.attempts)
        fig.max_attempts = max(fig.max_attempts, chain.attempts)
        for gap, asked in zip(chain.gaps_s, chain.retry_after_s, strict=True):
            fig.gaps_s.append(gap)
            if asked is not None and asked >= 0.5:
                fig.retry_after_asked += 1
                if gap >= asked * 0.9 - 0.05:
                    fig.retry_after_honoured += 1
                else:
                    fig.retry_after_ignored += 1
            elif gap < IMMEDIATE_S:
                fig.immediate_retries += 1
        if chain.backoff == "growing":
            fig.growing_chains += 1
    if fig.gaps_s:
        fig.min_gap_s = min(fig.gaps_s)
        fig.median_gap_s = round(statistics.median(fig.gaps_s), 4)
    fig.gaps_s = fig.gaps_s[:40]
    for r in log.requests:
        if r.outcome in ("stalled", "client-gave-up"):
            fig.stalls += 1
            if r.outcome == "client-gave-up" and r.client_waited_s is not None:
                fig.client_timeouts += 1
                fig.client_timeout_after_s.append(r.client_waited_s)
            else:
                fig.waited_full_stall += 1
        if r.outcome == "rejected":
            fig.rejected += 1
        if r.queued_ms > 0:
            fig.queued += 1
            fig.max_queue_ms = max(fig.max_queue_ms, r.queued_ms)
    refused = [c for c in log.connections if c.refused]
    fig.refused_connections = len(refused)
    if refused:
        opened = [c.opened_s for c in log.connections]
        first = log.connections.index(refused[0])
        last = log.connections.index(refused[-1])
        window = opened[first : last + 2]
        fig.reconnect_gaps_s = [round(b - a, 4) for a, b in zip(window, window[1:], strict=False)][:20]
    fig.max_in_flight = log.max_in_flight
    return fig


def _judged(name: str, evidence: list[str], *, failed: str | None, survived: str) -> EdgeCase:
    """FAILED with the `failed` summary when there is one, else SURVIVED; the same evidence either way."""
    if failed is not None:
        return EdgeCase(name=name, verdict=Verdict.FAILED, summary=failed, evidence=evidence)
    return EdgeCase(name=name, verdict=Verdict.SURVIVED, summary=survived, evidence=evidence)


def _timeouts(log: ProxyLog, fig: RetryFigures) -> EdgeCase:
    name = "connection timeouts"
    if not fig.stalls:
        return EdgeCase(name=name, verdict=Verdict.NOT_EXERCISED, summary="no request was stalled (add a stall fault)")
    evidence = [
        f"request #{r.index} {r.method} {r.path}: "
        + (
            f"client hung up after {r.client_waited_s:.3f} s"
            if r.outcome == "client-gave-up"
            else "client waited the whole stall"
        )
        for r in log.requests
        if r.outcome in ("stalled", "client-gave-up")
    ][:10]
    return _judged(
        name,
        evidence,
        failed=f"{fig.waited_full_stall} of {fig.stalls} stalled requests waited out the whole stall: "
        "the client has no timeout"
        if fig.waited_full_stall
        else None,
        survived=f"the client timed out every stalled request (after {_fmt(fig.client_timeout_after_s)} s)",
    )


def _intermittent(chains: list[RequestChain], fig: RetryFigures) -> EdgeCase:
    name = "intermittent failures"
    hit = [c for c in chains if any(not o.startswith("ok") for o in c.outcomes) or c.gave_up]
    if not hit and not fig.refused_connections:
        return EdgeCase(name=name, verdict=Verdict.NOT_EXERCISED, summary="no request failed under the faults")
    evidence = [
        f"{c.method} {c.path}: {' → '.join(c.outcomes)}" + (" (gave up)" if c.gave_up else " (recovered)") for c in hit
    ][:10]
    if fig.refused_connections:
        evidence.append(
            f"{fig.refused_connections} connections refused; gaps between connection attempts: "
            f"{_fmt(fig.reconnect_gaps_s)} s"
        )
    gave_up = [c for c in hit if c.gave_up]
    return _judged(
        name,
        evidence,
        failed=f"{len(gave_up)} of {len(hit)} failing operations never succeeded "
        f"(gave up after {', '.join(str(c.attempts) for c in gave_up[:8])} tries)"
        if gave_up
        else None,
        survived=f"all {len(hit)} operations that met a fault recovered (at most {fig.max_attempts} tries)",
    )


def _retries(chains: list[RequestChain], fig: RetryFigures) -> EdgeCase:
    name = "retry mechanisms"
    hit = [c for c in chains if any(not o.startswith("ok") for o in c.outcomes[:-1]) or c.gave_up or c.attempts > 1]
    if not hit:
        return EdgeCase(
            name=name, verdict=Verdict.NOT_EXERCISED, summary="no failure gave the client a reason to retry"
        )
    evidence = [
        f"{c.method} {c.path}: {c.attempts} tries, gaps {_fmt(c.gaps_s) or '-'} s, backoff {c.backoff}"
        + (
            f", retry-after asked {_fmt([a for a in c.retry_after_s if a is not None])} s"
            f" {'honoured' if c.retry_after_honoured else 'ignored'}"
            if c.retry_after_honoured is not None
            else ""
        )
        for c in hit
    ][:10]
    figures = (
        f"{fig.retried_chains} retried operations, median gap {fig.median_gap_s} s, min gap {fig.min_gap_s} s, "
        f"{fig.immediate_retries} immediate retries, retry-after honoured {fig.retry_after_honoured}/"
        f"{fig.retry_after_asked}"
    )
    problems = []
    if fig.retried_chains == 0:
        problems.append(f"never retried: gave up after {', '.join(str(n) for n in fig.gave_up_after[:8])} try")
    if fig.immediate_retries:
        problems.append(f"{fig.immediate_retries} retries came within {IMMEDIATE_S * 1000:.0f} ms (no backoff)")
    if fig.retry_after_ignored:
        problems.append(f"retry-after ignored {fig.retry_after_ignored} of {fig.retry_after_asked} times")
    return _judged(
        name,
        evidence,
        failed="; ".join(problems) + f" — {figures}" if problems else None,
        survived=f"backed off between retries and honoured retry-after — {figures}",
    )


def _concurrency(chains: list[RequestChain], fig: RetryFigures) -> EdgeCase:
    name = "concurrent request handling"
    if fig.max_in_flight <= 1:
        return EdgeCase(
            name=name, verdict=Verdict.NOT_EXERCISED, summary="requests arrived one at a time (never two in flight)"
        )
    evidence = [
        f"at most {fig.max_in_flight} requests in flight",
        f"{fig.queued} queued by the concurrency cap (longest {fig.max_queue_ms:.1f} ms), {fig.rejected} rejected",
    ]
    gave_up = [c for c in chains if c.gave_up]
    return _judged(
        name,
        evidence,
        failed=f"{len(gave_up)} operations failed while up to {fig.max_in_flight} were in flight" if gave_up else None,
        survived=f"every operation completed with up to {fig.max_in_flight} in flight "
        f"({fig.queued} queued, {fig.rejected} rejected)",
    )


def render_report(report: FaultReport) -> str:
    """The report as terminal text."""
    lines = [
        f"fault profile {report.profile} (seed {report.seed}) via {report.proxy_url} → {report.upstream}",
        f"env: {', '.join(f'{k}={v}' for k, v in report.env.items()) or '-'}",
        f"verdict: {report.verdict.value} — {report.summary}",
    ]
    if report.phase:
        p = report.phase
        lines.append(f"phase run {p.run_id}: {p.status} ({p.passed}/{p.tests} passed)")
        lines += [f"  failed: {name}" for name in p.failures]
    lines.append("")
    lines.append("edge cases:")
    for e in report.edge_cases:
        lines.append(f"  {e.name:<28} {e.verdict.value:<14} {e.summary}")
        lines += [f"      {ev}" for ev in e.evidence[:5]]
    lines.append("")
    lines.append("faults:")
    for f in report.injections:
        lines.append(f"  {f.fault:<18} {f.injected:>4}/{f.opportunities:<4} {f.description}")
    if report.traffic:
        fig = report.figures
        lines.append("")
        lines.append(
            f"retries: {fig.retried_chains} retried, max {fig.max_attempts} tries, gaps {_fmt(fig.gaps_s) or '-'} s, "
            f"retry-after honoured {fig.retry_after_honoured}/{fig.retry_after_asked}, gave up {fig.gave_up_chains}"
        )
        lines.append("")
        lines.append("connections:")
        for c in report.connections[:20]:
            head = f"  #{c.id} at {c.opened_s:.3f}s" + (" REFUSED" if c.refused else "")
            lines.append(head)
            for r in c.requests[:10]:
                faults = f" [{', '.join(r.faults)}]" if r.faults else ""
                lines.append(f"     {r.at_s:8.3f}s {r.method} {r.path} → {r.status or '-'} {r.outcome}{faults}")
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines)
