"""validate_github_api over real TLS: a fake GitHub serving https on 127.0.0.1 with a certificate from a test CA.

The CA is trusted only through SSL_CERT_FILE in the environment the tool is given (the same one its
token and API URL come from), so the untrusted case is the default and a trusted one is explicit.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trustme

from itest_mcp.tools.errors import GitHubError
from itest_mcp.tools.fake_github import FakeGitHub
from itest_mcp.tools.github import tls_trust
from itest_mcp.tools.github_validate import validate_github_api
from itest_mcp.tools.repo import Project, open_project


@pytest.fixture
def project(make_repo: Callable[..., Path]) -> Project:
    return open_project(make_repo({"README.md": "x\n"}))


@pytest.fixture
def ca(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context with a certificate for 127.0.0.1 and localhost, and the CA's PEM file."""
    authority = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    pem = tmp_path / "test-ca.pem"
    authority.cert_pem.write_to_path(str(pem))
    return server, pem


@pytest.mark.anyio
async def test_tls_version_is_reported_when_the_ca_is_trusted(
    project: Project, ca: tuple[ssl.SSLContext, Path], tmp_path: Path
) -> None:
    server, pem = ca
    async with FakeGitHub(tls=server) as fake:
        assert fake.url.startswith("https://127.0.0.1:")
        env = {
            "GITHUB_API_URL": fake.url,
            "GITHUB_TOKEN": "ghp_valid",
            "PATH": str(tmp_path),
            "SSL_CERT_FILE": str(pem),
        }
        result = await validate_github_api(project, env=env, handling_check=False)
    assert result.ok, result.problems
    assert result.api.reachable and result.api.is_github
    assert result.api.tls in ("TLSv1.2", "TLSv1.3"), result.api.tls
    assert result.identity is not None and result.identity.login == "octocat"


@pytest.mark.anyio
async def test_an_untrusted_certificate_is_named_and_not_retried(
    project: Project, ca: tuple[ssl.SSLContext, Path], tmp_path: Path
) -> None:
    server, _pem = ca
    async with FakeGitHub(tls=server) as fake:
        env = {"GITHUB_API_URL": fake.url, "GITHUB_TOKEN": "ghp_valid", "PATH": str(tmp_path)}
        started = time.monotonic()
        result = await validate_github_api(project, env=env, handling_check=False)
        elapsed = time.monotonic() - started
        served = len(fake.requests)
    assert not result.ok and not result.api.reachable
    assert result.api.error is not None and "TLS handshake with 127.0.0.1 failed" in result.api.error
    assert "SSL_CERT_FILE" in result.api.error
    assert served == 0  # no HTTP request got through the handshake
    assert elapsed < 5  # a certificate problem is not retried with backoff


def test_a_bad_ssl_cert_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(GitHubError, match="SSL_CERT_FILE=.*nope.pem.* cannot be loaded.*PEM file"):
        tls_trust({"SSL_CERT_FILE": str(missing)})
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(GitHubError, match="garbage.pem"):
        tls_trust({"SSL_CERT_FILE": str(garbage)})


def test_default_trust_has_certifi_and_system_roots() -> None:
    context = tls_trust({})
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 50


def test_ssl_cert_file_as_a_folder_and_a_missing_ssl_cert_dir_are_named(tmp_path: Path) -> None:
    with pytest.raises(GitHubError, match="is a folder; point SSL_CERT_FILE at a PEM file.*SSL_CERT_DIR"):
        tls_trust({"SSL_CERT_FILE": str(tmp_path)})
    with pytest.raises(GitHubError, match="SSL_CERT_DIR=.*nowhere.* is not a folder"):
        tls_trust({"SSL_CERT_DIR": str(tmp_path / "nowhere")})
    assert tls_trust({"SSL_CERT_DIR": str(tmp_path)}).verify_mode == ssl.CERT_REQUIRED
