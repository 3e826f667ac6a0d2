"""The per-user cache folder `<tempdir>/itest-mcp-<uid>/`: tool schemas, the compiled coverprofile helper.

In a shared temp dir another user could create our folder first and plant files in it (schemas we
would serve, a binary we would run), so a folder not owned by us or writable by others is refused.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def user_cache_path() -> Path:
    """Where the folder lives (not created)."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"itest-mcp-{uid}"


def is_private_folder(folder: Path) -> bool:
    """Owned by this user and not writable by group or others."""
    if not hasattr(os, "getuid"):
        return True
    info = folder.stat()
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def user_cache_dir() -> Path | None:
    """The folder, created private on first use; None when it cannot be made or is not private."""
    folder = user_cache_path()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return folder if is_private_folder(folder) else None
    except OSError:
        return None
