"""Standard-library REST client used by the itest-mcp demo."""

from .client import (
    NotFound,
    RepoClient,
    RepoClientError,
    RequestTimeout,
    RetriesExhausted,
    Unauthorized,
)

__all__ = [
    "NotFound",
    "RepoClient",
    "RepoClientError",
    "RequestTimeout",
    "RetriesExhausted",
    "Unauthorized",
]
