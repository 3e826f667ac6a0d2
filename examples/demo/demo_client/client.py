"""A tiny GitHub-like REST client built on urllib.request (standard library only)."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request


class RepoClientError(Exception):
    """Base class for client errors."""


class NotFound(RepoClientError):
    """The server answered 404."""


class Unauthorized(RepoClientError):
    """The server answered 401."""


class RetriesExhausted(RepoClientError):
    """Every attempt failed with a retryable status (5xx or 429)."""


class RequestTimeout(RepoClientError, TimeoutError):
    """The server did not answer within the client's timeout."""


def _retry_after(headers) -> float | None:
    value = (headers.get("Retry-After") or "").strip() if headers else ""
    if not value:
        return None
    try:
        seconds = int(value)
    except ValueError:
        return None
    return float(seconds) if seconds >= 0 else None


class RepoClient:
    def __init__(self, base_url, token=None, timeout=2.0, max_retries=3, backoff=0.05):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.backoff = backoff

    def get_repo(self, owner: str, name: str) -> dict:
        path = "/repos/{}/{}".format(
            urllib.parse.quote(owner, safe=""), urllib.parse.quote(name, safe="")
        )
        return self._get_json(path)

    def _request(self, path: str) -> urllib.request.Request:
        headers = {"Accept": "application/vnd.github+json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        return urllib.request.Request(self.base_url + path, headers=headers, method="GET")

    def _get_json(self, path: str):
        delay = self.backoff
        last_error = None
        for attempt in range(self.max_retries + 1):
            wait = delay
            try:
                with urllib.request.urlopen(self._request(path), timeout=self.timeout) as resp:
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as err:
                err.close()
                if err.code == 401:
                    raise Unauthorized(path) from err
                if err.code == 404:
                    raise NotFound(path) from err
                if err.code == 429:
                    after = _retry_after(err.headers)
                    if after is not None:
                        wait = after
                elif err.code < 500:
                    raise RepoClientError(f"GET {path}: unexpected status {err.code}") from err
                last_error = f"status {err.code}"
            except (socket.timeout, TimeoutError) as err:
                raise RequestTimeout(f"GET {path}: timed out after {self.timeout}s") from err
            except urllib.error.URLError as err:
                if isinstance(err.reason, (socket.timeout, TimeoutError)):
                    raise RequestTimeout(f"GET {path}: timed out after {self.timeout}s") from err
                raise
            if attempt < self.max_retries:
                time.sleep(wait)
                delay *= 2
        raise RetriesExhausted(f"GET {path}: {self.max_retries + 1} attempts, last: {last_error}")
