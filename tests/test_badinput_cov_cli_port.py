"""`serve --http --port N` outside 0-65535: a usage error naming the value (exit 2), never an OverflowError."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from itest_mcp.server.cli import main


@pytest.mark.parametrize("port", ["99999", "-1", "65536", "http"])
def test_serve_port_out_of_range_is_a_usage_error(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str], port: str
) -> None:
    repo = make_repo({"a.txt": "one\n"})
    with pytest.raises(SystemExit) as exit_info:
        main(["--repo", str(repo), "serve", "--http", "--port", port])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"--port: {port!r} is not a port number (0-65535)" in err
    assert "Traceback" not in err
