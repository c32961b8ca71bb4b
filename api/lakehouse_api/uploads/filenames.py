"""Client file names made safe to become the last segment of an S3 key."""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath

MAX_FILENAME_LENGTH = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_FALLBACK = "upload"


def safe_filename(name: str | None, max_length: int = MAX_FILENAME_LENGTH) -> str:
    """Base name only (no directories, so no traversal), ASCII letters, digits, `._-`, no leading dot.

    Accents are folded (café -> cafe) so a readable name survives; anything else becomes `_`.
    The extension is kept when the name is shortened, because the operator and humans read it.
    """
    if not name:
        return _FALLBACK
    # Browsers and old clients send Windows paths; either separator ends a directory.
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    folded = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    # Control characters are unsafe too; the substitution turns them into `_` with the rest.
    cleaned = _UNSAFE.sub("_", folded).strip("._-") or _FALLBACK
    if len(cleaned) <= max_length:
        return cleaned
    suffix = PurePosixPath(cleaned).suffix
    if len(suffix) > 16:  # not a real extension
        suffix = ""
    return cleaned[: max_length - len(suffix)].rstrip("._-") + suffix
