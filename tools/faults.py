"""The fault proxy: a TCP proxy and an HTTP forward/reverse proxy in one, on 127.0.0.1 only.

It sits in front of a loopback upstream (the fake GitHub, or any configured
host:port), injects the faults of a profile (see fault_profiles.py) on their
schedules, and records every client connection and every request with
timestamps, so the report can say whether the code under test timed out,
retried, backed off and honoured `retry-after`.

HTTP mode reads each request and response whole (API payloads are small) and
re-frames them with Content-Length, which lets it rewrite statuses and bodies;
TCP mode (and CONNECT tunnels) relays bytes. Opportunities for a fault are
requests in HTTP mode and connections in TCP mode; `down` always counts connections.
"""

from __future__ import annotations

import json
import random
import re
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import SocketAttribute, SocketStream, TaskGroup
from anyio.streams.buffered import BufferedByteReceiveStream
from pydantic import Field

from .errors import FaultError
from .fault_profiles import Direction, Fault, FaultKind, Profile, ProxyMode, Upstream, parse_upstream
from .models import Model

MAX_HEAD = 64 * 1024
MAX_BODY = 32 * 1024 * 1024
RECORD_LIMIT = 20_000
"""Requests kept per proxy; beyond it only counters grow (a runaway client must not eat memory)."""
HOP_BY_HOP = {
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"content-length",
    b"te",
    b"trailer",
    b"upgrade",
    b"proxy-authorization",
}
REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


# -- records -------------------------------------------------------------------------------


class Injection(Model):
    """One fault applied: which, when (seconds since the proxy started), to which connection and request."""

    seq: int
    fault: str
    kind: FaultKind
    at_s: float
    connection: int
    request: int | None = None


class RequestRecord(Model):
    """One request as the proxy saw it."""

    index: int
    """Position among all requests through the proxy (1-based)."""
    connection: int
    method: str
    path: str
    host: str = ""
    started_s: float
    ended_s: float | None = None
    status: int | None = None
    """The status the client received (None when it got none: reset, closed, stalled)."""
    outcome: str = "pending"
    """ok | http-error | injected-status | reset | closed | stalled | client-gave-up | rejected | upstream-error."""
    faults: list[str] = Field(default_factory=list)
    retry_after_s: float | None = None
    """The wait the response asked for (retry-after, or x-ratelimit-reset when remaining is 0)."""
    queued_ms: float = 0.0
    client_waited_s: float | None = None
    """For a stall: how long the client waited before hanging up."""


class ConnectionRecord(Model):
    """One client connection and what happened on it."""

    id: int
    opened_s: float
    closed_s: float | None = None
    refused: bool = False
    tunnel: str | None = None
    """host:port of a CONNECT tunnel or "tcp" in TCP mode."""
    bytes_up: int = 0
    bytes_down: int = 0
    requests: list[int] = Field(default_factory=list)
    faults: list[str] = Field(default_factory=list)


class ProxyLog(Model):
    """Everything a proxy recorded, in the order it happened."""

    url: str
    upstream: str
    mode: ProxyMode
    profile: str
    seed: int
    started_at: float
    """Wall-clock start (epoch seconds); the other times are seconds since then."""
    duration_s: float = 0.0
    connections: list[ConnectionRecord] = Field(default_factory=list)
    requests: list[RequestRecord] = Field(default_factory=list)
    injections: list[Injection] = Field(default_factory=list)
    opportunities: dict[str, int] = Field(default_factory=dict)
    max_in_flight: int = 0
    dropped_records: int = 0


# -- schedules -----------------------------------------------------------------------------


class Schedule:
    """Decides, opportunity by opportunity, whether a fault fires: repeatable for a given seed."""

    def __init__(self, fault: Fault, index: int, profile_seed: int) -> None:
        seed = fault.seed if fault.seed is not None else profile_seed
        self.fault = fault
        self.count = 0
        # A string seed hashes the same in every process (unlike hash() of a tuple).
        self._draw = random.Random(f"faults:{seed}:{index}:draw")
        self.jitter = random.Random(f"faults:{seed}:{index}:jitter")
        self._path = re.compile(fault.path) if fault.path else None

    def matches(self, path: str | None) -> bool:
        return self._path is None or (path is not None and self._path.search(path) is not None)

    def fires(self) -> bool:
        """Count one opportunity and say whether the fault fires on it."""
        self.count += 1
        f = self.fault
        n = self.count - f.after
        if n <= 0:
            return False
        if f.first is not None and n > f.first:
            return False
        if f.every is not None and n % f.every != 0:
            return False
        if f.probability >= 1.0:
            return True
        return self._draw.random() < f.probability

    def delay_s(self) -> float:
        f = self.fault
        jitter = self.jitter.uniform(-f.jitter_ms, f.jitter_ms) if f.jitter_ms else 0.0
        return max(0.0, f.latency_ms + jitter) / 1000.0


# -- HTTP framing --------------------------------------------------------------------------


class _Closed(Exception):
    """The peer closed before a whole message arrived."""


@dataclass
class Message:
    first: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    until_close: bool = False

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def wants_close(self) -> bool:
        conn = (self.header(b"connection") or b"").lower()
        if b"close" in conn:
            return True
        return self.first.endswith(b"HTTP/1.0") and b"keep-alive" not in conn


async def read_head(reader: BufferedByteReceiveStream) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The start line and headers of one message; _Closed at a clean end of stream."""
    try:
        head = await reader.receive_until(b"\r\n\r\n", MAX_HEAD)
    except (anyio.IncompleteRead, anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
        raise _Closed from exc
    lines = head.split(b"\r\n")
    while lines and not lines[0]:
        lines.pop(0)  # tolerate stray CRLF between keep-alive messages
    if not lines:
        raise _Closed
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        key, sep, value = line.partition(b":")
        if sep:
            headers.append((key.strip(), value.strip()))
    return lines[0], headers


async def read_body(reader: BufferedByteReceiveStream, msg: Message, *, response: bool, no_body: bool) -> None:
    """Fill msg.body from Content-Length, chunked framing, or (responses) the end of the stream."""
    if no_body:
        return
    try:
        te = (msg.header(b"transfer-encoding") or b"").lower()
        if b"chunked" in te:
            parts: list[bytes] = []
            total = 0
            while True:
                size_line = await reader.receive_until(b"\r\n", 1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while await reader.receive_until(b"\r\n", MAX_HEAD):
                        pass  # trailers
                    break
                total += size
                if total > MAX_BODY:
                    raise _Closed
                parts.append(await reader.receive_exactly(size))
                await reader.receive_exactly(2)
            msg.body = b"".join(parts)
            return
        length = msg.header(b"content-length")
        if length is not None:
            n = int(length)
            if n < 0 or n > MAX_BODY:
                raise _Closed
            msg.body = await reader.receive_exactly(n) if n else b""
            return
        if response:
            parts = [reader.buffer] if reader.buffer else []
            reader._buffer = bytearray()  # noqa: SLF001 - drain what was already read before reading to EOF
            while True:
                try:
                    parts.append(await reader.receive())
                except anyio.EndOfStream:
                    break
            msg.body = b"".join(parts)
            msg.until_close = True
    except (anyio.IncompleteRead, anyio.EndOfStream, anyio.BrokenResourceError, anyio.DelimiterNotFound) as exc:
        raise _Closed from exc
    except ValueError as exc:
        raise _Closed from exc


def frame(first: bytes, headers: list[tuple[bytes, bytes]], body: bytes, *, close: bool) -> tuple[bytes, bytes]:
    """Head and body of a message re-framed with Content-Length (hop-by-hop headers dropped)."""
    out = [first]
    for key, value in headers:
        if key.lower() not in HOP_BY_HOP:
            out.append(key + b": " + value)
    out.append(b"Content-Length: " + str(len(body)).encode())
    if close:
        out.append(b"Connection: close")
    return b"\r\n".join(out) + b"\r\n\r\n", body


def status_of(first: bytes) -> int:
    parts = first.split(b" ", 2)
    try:
        return int(parts[1])
    except (IndexError, ValueError):
        return 0


def _retry_after(headers: list[tuple[bytes, bytes]], now_epoch: float) -> float | None:
    values = {k.lower(): v for k, v in headers}
    ra = values.get(b"retry-after")
    if ra is not None:
        try:
            return float(ra)
        except ValueError:
            return None
    if values.get(b"x-ratelimit-remaining") == b"0" and b"x-ratelimit-reset" in values:
        try:
            return max(0.0, float(values[b"x-ratelimit-reset"]) - now_epoch)
        except ValueError:
            return None
    return None


# -- the proxy -----------------------------------------------------------------------------


@dataclass
class _Upstream:
    stream: SocketStream
    reader: BufferedByteReceiveStream


@dataclass
class _Cap:
    fault: Fault
    label: str
    schedule: Schedule
    semaphore: anyio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.semaphore = anyio.Semaphore(self.fault.max_concurrent)


async def _abort(stream: SocketStream) -> None:
    """Close with a TCP RST (SO_LINGER 0) instead of a FIN."""
    try:
        sock = stream.extra(SocketAttribute.raw_socket)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, anyio.TypedAttributeLookupError):
        pass
    await stream.aclose()


async def _graceful_close(stream: SocketStream) -> None:
    """Half-close and give the peer a moment to read everything before the socket goes."""
    try:
        await stream.send_eof()
        with anyio.move_on_after(1.0):
            while True:
                await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass
    await stream.aclose()


async def _send_throttled(stream: SocketStream, data: bytes, rate_kbps: float) -> None:
    chunk = max(1, int(rate_kbps * 1024 / 20))  # 20 slices a second keeps the rate smooth
    for start in range(0, len(data), chunk):
        await stream.send(data[start : start + chunk])
        await anyio.sleep(chunk / (rate_kbps * 1024))


class FaultProxy:
    """A loopback proxy that injects a profile's faults and records the traffic; use it as `async with`."""

    def __init__(
        self,
        upstream: Upstream | str,
        profile: Profile,
        *,
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.upstream = (
            parse_upstream(upstream)
            if isinstance(upstream, str)
            else parse_upstream(f"{upstream.host}:{upstream.port}")
        )
        self.profile = profile
        self.port = port
        self._clock = clock
        self._wall = wall
        self._t0 = 0.0
        self._tg: TaskGroup | None = None
        self._schedules = [Schedule(f, i, profile.seed) for i, f in enumerate(profile.faults)]
        self._labels = [f.label(i) for i, f in enumerate(profile.faults)]
        self._caps = [
            _Cap(f, self._labels[i], self._schedules[i])
            for i, f in enumerate(profile.faults)
            if f.kind is FaultKind.CONCURRENCY_CAP
        ]
        self._in_flight = 0
        self.log = ProxyLog(
            url="",
            upstream=self.upstream.url,
            mode=profile.mode,
            profile=profile.name,
            seed=profile.seed,
            started_at=0.0,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def now(self) -> float:
        return round(self._clock() - self._t0, 6)

    async def __aenter__(self) -> FaultProxy:
        try:
            listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self.port)
        except OSError as exc:
            if self.port and exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
                raise FaultError(
                    f"port {self.port} on 127.0.0.1 is in use, so the fault proxy cannot listen there; "
                    "stop what holds it, pick another [faults] port, or use 0 for a free one"
                ) from exc
            raise FaultError(f"the fault proxy cannot listen on 127.0.0.1:{self.port}: {exc.strerror or exc}") from exc
        self.port = listener.extra(SocketAttribute.local_port)
        self._t0 = self._clock()
        self.log.url = self.url
        self.log.started_at = self._wall()
        self._listener = listener
        self._tg_cm = anyio.create_task_group()
        self._tg = await self._tg_cm.__aenter__()
        self._tg.start_soon(listener.serve, self._handle)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        await self._tg_cm.__aexit__(None, None, None)
        await self._listener.aclose()
        self.log.duration_s = self.now()
        self.log.opportunities = {label: s.count for label, s in zip(self._labels, self._schedules, strict=True)}

    # -- recording -------------------------------------------------------------------------

    def _inject(self, index: int, conn: ConnectionRecord, req: RequestRecord | None) -> None:
        label = self._labels[index]
        self.log.injections.append(
            Injection(
                seq=len(self.log.injections) + 1,
                fault=label,
                kind=self.profile.faults[index].kind,
                at_s=self.now(),
                connection=conn.id,
                request=req.index if req else None,
            )
        )
        conn.faults.append(label)
        if req is not None:
            req.faults.append(label)

    def _fired(self, kinds: set[FaultKind], path: str | None, direction: Direction | None = None) -> list[int]:
        """Indexes of the faults of these kinds that fire on this opportunity (every matching schedule counts it)."""
        out = []
        for i, (fault, sched) in enumerate(zip(self.profile.faults, self._schedules, strict=True)):
            if fault.kind in kinds and (direction is None or fault.direction is direction) and sched.matches(path):
                if sched.fires():
                    out.append(i)
        return out

    # -- connections -----------------------------------------------------------------------

    async def _handle(self, client: SocketStream) -> None:
        conn = ConnectionRecord(id=len(self.log.connections) + 1, opened_s=self.now())
        self.log.connections.append(conn)
        try:
            down = self._fired({FaultKind.DOWN}, None)
            if down:
                conn.refused = True
                self._inject(down[0], conn, None)
                await _abort(client)
                return
            if self.profile.mode is ProxyMode.TCP:
                conn.tunnel = "tcp"
                await self._tunnel(client, conn, self.upstream.host, self.upstream.port, b"")
            else:
                await self._serve_http(client, conn)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError, _Closed):
            pass
        finally:
            conn.closed_s = self.now()
            with anyio.CancelScope(shield=True):
                await client.aclose()

    async def _connect_upstream(self) -> _Upstream:
        stream = await anyio.connect_tcp(self.upstream.host, self.upstream.port)
        return _Upstream(stream, BufferedByteReceiveStream(stream))

    async def _serve_http(self, client: SocketStream, conn: ConnectionRecord) -> None:
        reader = BufferedByteReceiveStream(client)
        upstream: _Upstream | None = None
        try:
            while True:
                try:
                    first, headers = await read_head(reader)
                except anyio.DelimiterNotFound:
                    await client.send(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n")
                    return
                req_msg = Message(first, headers)
                parts = first.split(b" ")
                if len(parts) != 3:
                    await client.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    return
                method, target = parts[0], parts[1]
                if method == b"CONNECT":
                    await self._connect_method(client, reader, conn, target.decode("latin-1"))
                    return
                await read_body(reader, req_msg, response=False, no_body=False)
                host = (req_msg.header(b"host") or b"").decode("latin-1")
                if target.startswith(b"http://") or target.startswith(b"https://"):
                    # Forward-proxy form: whatever host the client named, the request goes to the loopback upstream.
                    rest = target.split(b"://", 1)[1]
                    slash = rest.find(b"/")
                    host = rest[:slash].decode("latin-1") if slash >= 0 else rest.decode("latin-1")
                    target = rest[slash:] if slash >= 0 else b"/"
                req_msg.first = method + b" " + target + b" HTTP/1.1"
                record = self._new_request(conn, method.decode("latin-1"), target.decode("latin-1"), host)
                self._in_flight += 1
                self.log.max_in_flight = max(self.log.max_in_flight, self._in_flight)
                try:
                    keep, upstream = await self._exchange(client, reader, conn, record, req_msg, upstream)
                finally:
                    self._in_flight -= 1
                    if record.ended_s is None:
                        record.ended_s = self.now()
                if not keep:
                    return
        finally:
            if upstream is not None:
                with anyio.CancelScope(shield=True):
                    await upstream.stream.aclose()

    def _new_request(self, conn: ConnectionRecord, method: str, path: str, host: str) -> RequestRecord:
        index = len(self.log.requests) + self.log.dropped_records + 1
        record = RequestRecord(
            index=index, connection=conn.id, method=method, path=path, host=host, started_s=self.now()
        )
        if len(self.log.requests) < RECORD_LIMIT:
            self.log.requests.append(record)
            conn.requests.append(index)
        else:
            self.log.dropped_records += 1
        return record

    async def _exchange(
        self,
        client: SocketStream,
        reader: BufferedByteReceiveStream,
        conn: ConnectionRecord,
        record: RequestRecord,
        req: Message,
        upstream: _Upstream | None,
    ) -> tuple[bool, _Upstream | None]:
        """One request: faults on the way up, forward (or answer), faults on the way down. Returns keep-alive."""
        path = record.path
        faults = self.profile.faults
        close_after = req.wants_close()

        # Concurrency caps act before anything else: a capped request waits (or is turned away) at the door.
        gate = _CapGate(self, conn, record)
        async with gate as admitted:
            if not admitted:
                assert gate.rejected_by is not None
                resp = self._status_response(gate.rejected_by)
                head, body = frame(resp.first, resp.headers, resp.body, close=close_after)
                record.status = status_of(resp.first)
                record.retry_after_s = _retry_after(resp.headers, self._wall())
                await client.send(head + body)
                record.ended_s = self.now()
                return not close_after, upstream

            up = self._fired(
                {FaultKind.LATENCY, FaultKind.BANDWIDTH, FaultKind.STALL, FaultKind.RESET, FaultKind.CLOSE_AFTER},
                path,
                Direction.UPSTREAM,
            )
            throttle_up: float | None = None
            for i in up:
                f = faults[i]
                self._inject(i, conn, record)
                if f.kind is FaultKind.LATENCY:
                    await anyio.sleep(self._schedules[i].delay_s())
                elif f.kind is FaultKind.BANDWIDTH:
                    throttle_up = f.rate_kbps
                elif f.kind is FaultKind.STALL:
                    await self._stall(client, record, f.stall_s)
                    return False, upstream
                elif f.kind is FaultKind.RESET:
                    record.outcome = "reset"
                    await _abort(client)
                    return False, upstream
                elif f.kind is FaultKind.CLOSE_AFTER:
                    head, body = frame(req.first, req.headers, req.body, close=True)
                    try:
                        upstream = upstream or await self._connect_upstream()
                        await upstream.stream.send((head + body)[: f.after_bytes])
                    except OSError:
                        pass
                    record.outcome = "closed"
                    return False, upstream

            status_faults = self._fired({FaultKind.HTTP_STATUS}, path)
            if status_faults:
                i = status_faults[0]
                self._inject(i, conn, record)
                resp = self._status_response(faults[i])
                record.outcome = "injected-status"
            else:
                try:
                    resp, upstream = await self._forward(req, upstream, throttle_up)
                except (OSError, _Closed, anyio.BrokenResourceError) as exc:
                    upstream = None
                    resp = Message(
                        b"HTTP/1.1 502 Bad Gateway",
                        [(b"Content-Type", b"application/json")],
                        json.dumps({"message": f"fault proxy: upstream {self.upstream.url} failed: {exc}"}).encode(),
                    )
                    record.outcome = "upstream-error"

            status = status_of(resp.first)
            record.retry_after_s = _retry_after(resp.headers, self._wall())
            down = self._fired(
                {
                    FaultKind.BAD_JSON,
                    FaultKind.LATENCY,
                    FaultKind.STALL,
                    FaultKind.RESET,
                    FaultKind.SLOW_HEADERS,
                    FaultKind.BANDWIDTH,
                    FaultKind.CLOSE_AFTER,
                },
                path,
                Direction.DOWNSTREAM,
            )
            close = close_after or resp.until_close
            body = resp.body
            head = b""
            slow: float | None = None
            throttle: float | None = None
            cut: int | None = None
            for i in down:
                f = faults[i]
                if f.kind is FaultKind.BAD_JSON:
                    if not body:
                        continue
                    body = body[: max(1, len(body) // 2)] if f.body_mode == "truncated" else b'{"message": "ok", ]'
                elif f.kind is FaultKind.LATENCY:
                    await anyio.sleep(self._schedules[i].delay_s())
                elif f.kind is FaultKind.STALL:
                    self._inject(i, conn, record)
                    await self._stall(client, record, f.stall_s)
                    return False, upstream
                elif f.kind is FaultKind.RESET:
                    self._inject(i, conn, record)
                    record.outcome = "reset"
                    await _abort(client)
                    return False, upstream
                elif f.kind is FaultKind.SLOW_HEADERS:
                    slow = f.interval_ms / 1000.0
                elif f.kind is FaultKind.BANDWIDTH:
                    throttle = f.rate_kbps
                elif f.kind is FaultKind.CLOSE_AFTER:
                    cut = f.after_bytes
                self._inject(i, conn, record)
            head, body = frame(resp.first, resp.headers, body, close=close or cut is not None)
            if record.outcome == "pending":
                record.outcome = "ok" if status < 400 else "http-error"
            record.status = status
            if cut is not None:
                await client.send((head + body)[:cut])
                record.outcome = "closed"
                record.status = None
                record.ended_s = self.now()
                await _graceful_close(client)
                return False, upstream
            if slow is not None:
                for line in head.split(b"\r\n")[:-2]:
                    await client.send(line + b"\r\n")
                    await anyio.sleep(slow)
                head = b"\r\n"
            if throttle is not None:
                await _send_throttled(client, head + body, throttle)
            else:
                await client.send(head + body)
            record.ended_s = self.now()
            if close:
                await _graceful_close(client)
                return False, upstream
            return True, upstream

    def _status_response(self, f: Fault) -> Message:
        headers: list[tuple[bytes, bytes]] = [(b"Content-Type", b"application/json")]
        if f.retry_after_s is not None:
            headers.append((b"Retry-After", str(f.retry_after_s).encode()))
        if f.ratelimit_reset_s is not None:
            reset = int(self._wall()) + f.ratelimit_reset_s + 1
            headers += [
                (b"X-RateLimit-Limit", b"60"),
                (b"X-RateLimit-Remaining", b"0"),
                (b"X-RateLimit-Reset", str(reset).encode()),
            ]
        for key, value in f.headers.items():
            headers.append((key.encode("latin-1"), value.encode("latin-1")))
        reason = REASONS.get(f.status, "Injected")
        body = (f.body if f.body is not None else json.dumps({"message": f"{f.status} {reason} (injected)"})).encode()
        return Message(f"HTTP/1.1 {f.status} {reason}".encode(), headers, body)

    async def _forward(
        self, req: Message, upstream: _Upstream | None, throttle_kbps: float | None
    ) -> tuple[Message, _Upstream | None]:
        head, body = frame(req.first, req.headers, req.body, close=False)
        for attempt in (1, 2):
            fresh = upstream is None
            if upstream is None:
                upstream = await self._connect_upstream()
            try:
                if throttle_kbps is not None:
                    await _send_throttled(upstream.stream, head + body, throttle_kbps)
                else:
                    await upstream.stream.send(head + body)
                first, headers = await read_head(upstream.reader)
                resp = Message(first, headers)
                status = status_of(first)
                no_body = req.first.startswith(b"HEAD ") or status in (204, 304) or 100 <= status < 200
                await read_body(upstream.reader, resp, response=True, no_body=no_body)
            except (_Closed, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                await upstream.stream.aclose()
                upstream = None
                if fresh or attempt == 2:
                    raise
                continue  # a kept-alive upstream connection the server had closed: one fresh try
            if resp.until_close or resp.wants_close():
                await upstream.stream.aclose()
                upstream = None
            return resp, upstream
        raise _Closed  # pragma: no cover - the loop returns or raises

    async def _stall(self, client: SocketStream, record: RequestRecord, seconds: float) -> None:
        """Hold the request: return when the client hangs up or `seconds` pass, recording which."""
        record.outcome = "stalled"
        started = self.now()
        with anyio.move_on_after(seconds):
            try:
                while await client.receive():
                    pass
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                record.outcome = "client-gave-up"
                record.client_waited_s = round(self.now() - started, 4)
        record.ended_s = self.now()

    async def _connect_method(
        self, client: SocketStream, reader: BufferedByteReceiveStream, conn: ConnectionRecord, target: str
    ) -> None:
        record = self._new_request(conn, "CONNECT", target, target)
        try:
            upstream = parse_upstream(target)
        except FaultError as exc:
            record.status, record.outcome, record.ended_s = 403, "http-error", self.now()
            body = json.dumps({"message": f"fault proxy: {exc}"}).encode()
            head, _ = frame(b"HTTP/1.1 403 Forbidden", [(b"Content-Type", b"application/json")], body, close=True)
            await client.send(head + body)
            return
        record.status, record.outcome, record.ended_s = 200, "ok", self.now()
        conn.tunnel = f"{upstream.host}:{upstream.port}"
        await client.send(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        await self._tunnel(client, conn, upstream.host, upstream.port, bytes(reader.buffer))

    # -- TCP relay -------------------------------------------------------------------------

    async def _tunnel(self, client: SocketStream, conn: ConnectionRecord, host: str, port: int, early: bytes) -> None:
        kinds = {FaultKind.LATENCY, FaultKind.BANDWIDTH, FaultKind.STALL, FaultKind.RESET, FaultKind.CLOSE_AFTER}
        per_dir: dict[Direction, list[int]] = {
            d: self._fired(kinds, None, d) for d in (Direction.UPSTREAM, Direction.DOWNSTREAM)
        }
        for indexes in per_dir.values():
            for i in indexes:
                self._inject(i, conn, None)
        try:
            server = await anyio.connect_tcp(host, port)
        except OSError:
            await _abort(client)
            return
        async with server, anyio.create_task_group() as tg:

            async def pump(src: SocketStream, dst: SocketStream, direction: Direction, pre: bytes) -> None:
                fired = [self.profile.faults[i] for i in per_dir[direction]]
                sched = {id(self.profile.faults[i]): self._schedules[i] for i in per_dir[direction]}
                sent = 0
                try:
                    if pre:
                        await dst.send(pre)
                        sent += len(pre)
                    while True:
                        data = await src.receive()
                        for f in fired:
                            if f.kind is FaultKind.LATENCY:
                                await anyio.sleep(sched[id(f)].delay_s())
                            elif f.kind is FaultKind.STALL:
                                await anyio.sleep(f.stall_s)
                                tg.cancel_scope.cancel()
                                return
                            elif f.kind is FaultKind.RESET:
                                await _abort(client)
                                tg.cancel_scope.cancel()
                                return
                            elif f.kind is FaultKind.CLOSE_AFTER and sent + len(data) >= f.after_bytes:
                                await dst.send(data[: max(0, f.after_bytes - sent)])
                                tg.cancel_scope.cancel()
                                return
                        rate = next((f.rate_kbps for f in fired if f.kind is FaultKind.BANDWIDTH), None)
                        if rate is not None:
                            await _send_throttled(dst, data, rate)
                        else:
                            await dst.send(data)
                        sent += len(data)
                        if direction is Direction.UPSTREAM:
                            conn.bytes_up += len(data)
                        else:
                            conn.bytes_down += len(data)
                except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    pass
                try:
                    await dst.send_eof()
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    pass

            tg.start_soon(pump, client, server, Direction.UPSTREAM, early)
            tg.start_soon(pump, server, client, Direction.DOWNSTREAM, b"")


class _CapGate:
    """Admission through every concurrency cap of the profile (queue or reject), recorded on the request."""

    def __init__(self, proxy: FaultProxy, conn: ConnectionRecord, record: RequestRecord) -> None:
        self.proxy, self.conn, self.record = proxy, conn, record
        self.held: list[anyio.Semaphore] = []
        self.rejected_by: Fault | None = None

    async def __aenter__(self) -> bool:
        for cap in self.proxy._caps:
            if not cap.schedule.matches(self.record.path):
                continue
            sem = cap.semaphore
            if sem.value == 0:
                index = self.proxy.profile.faults.index(cap.fault)
                self.proxy._inject(index, self.conn, self.record)
                if cap.fault.over_cap == "reject":
                    self.record.outcome = "rejected"
                    self.rejected_by = cap.fault
                    return False
                started = self.proxy._clock()
                await sem.acquire()
                self.record.queued_ms = round((self.proxy._clock() - started) * 1000, 3)
            else:
                await sem.acquire()
            self.held.append(sem)
        return True

    async def __aexit__(self, *exc: object) -> None:
        for sem in self.held:
            sem.release()


# -- a minimal upstream for tests, benches and phases without the fake GitHub ---------------


@asynccontextmanager
async def json_upstream(
    payload: Callable[[str, str], tuple[int, dict[str, Any]]] | None = None, *, port: int = 0
) -> AsyncIterator[Upstream]:
    """A tiny keep-alive JSON HTTP server on 127.0.0.1 (GitHub-like repo answers unless `payload` says otherwise)."""

    def default(method: str, path: str) -> tuple[int, dict[str, Any]]:
        parts = [p for p in path.split("?")[0].split("/") if p]
        if len(parts) >= 3 and parts[0] == "repos":
            return 200, {"name": parts[2], "full_name": f"{parts[1]}/{parts[2]}", "default_branch": "main"}
        return 200, {"ok": True, "path": path, "method": method}

    answer = payload or default

    async def handle(stream: SocketStream) -> None:
        reader = BufferedByteReceiveStream(stream)
        async with stream:
            try:
                while True:
                    first, headers = await read_head(reader)
                    msg = Message(first, headers)
                    await read_body(reader, msg, response=False, no_body=False)
                    method, _, rest = first.partition(b" ")
                    path = rest.rsplit(b" ", 1)[0].decode("latin-1")
                    status, data = answer(method.decode("latin-1"), path)
                    body = json.dumps(data).encode()
                    reason = REASONS.get(status, "Status").encode()
                    close = msg.wants_close()
                    head, body = frame(
                        b"HTTP/1.1 %d %s" % (status, reason),
                        [(b"Content-Type", b"application/json")],
                        body,
                        close=close,
                    )
                    await stream.send(head + body)
                    if close:
                        return
            except (_Closed, anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.DelimiterNotFound, OSError):
                return

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
    bound = listener.extra(SocketAttribute.local_port)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, handle)
            try:
                yield Upstream(host="127.0.0.1", port=bound)
            finally:
                tg.cancel_scope.cancel()
    finally:
        await listener.aclose()


# -- concurrency probe ---------------------------------------------------------------------


class ConcurrencyProbe(Model):
    """N concurrent requests through the proxy: how many finished, failed, queued, and how long they took."""

    requests: int
    completed: int
    errors: int
    statuses: dict[str, int]
    queued: int
    max_queue_ms: float
    p50_ms: float
    p95_ms: float
    max_in_flight: int
    wall_s: float


async def probe_concurrency(
    proxy: FaultProxy, n: int, *, path: str = "/repos/octo/demo", timeout_s: float = 10.0
) -> ConcurrencyProbe:
    """Send `n` concurrent GETs through a running proxy and measure queueing and errors."""
    import httpx

    if not 1 <= n <= 1000:
        raise FaultError(f"concurrency probe size {n} is outside 1-1000; pick a bounded number of requests")
    first_index = len(proxy.log.requests) + 1
    statuses: dict[str, int] = {}
    times: list[float] = []
    errors = 0
    started = time.perf_counter()
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=proxy.url, timeout=timeout_s, limits=limits, trust_env=False) as client:

        async def one() -> None:
            nonlocal errors
            t = time.perf_counter()
            try:
                r = await client.get(path)
                statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
            except httpx.HTTPError as exc:
                errors += 1
                statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
            times.append((time.perf_counter() - t) * 1000)

        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(one)
    mine = [r for r in proxy.log.requests if r.index >= first_index]
    times.sort()
    return ConcurrencyProbe(
        requests=n,
        completed=sum(v for k, v in statuses.items() if k.isdigit() and int(k) < 400),
        errors=errors + sum(v for k, v in statuses.items() if k.isdigit() and int(k) >= 400),
        statuses=statuses,
        queued=sum(1 for r in mine if r.queued_ms > 0),
        max_queue_ms=max((r.queued_ms for r in mine), default=0.0),
        p50_ms=round(times[len(times) // 2], 3) if times else 0.0,
        p95_ms=round(times[min(len(times) - 1, int(len(times) * 0.95))], 3) if times else 0.0,
        max_in_flight=proxy.log.max_in_flight,
        wall_s=round(time.perf_counter() - started, 4),
    )
