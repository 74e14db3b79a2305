"""Environment values that name a legacy model: `.env` files, docker compose `environment:` and Dockerfile
`ENV`/`ARG`, read where the code that calls `os.getenv("K")` would find them.

`MODEL_EMBEDDING=jinaai/jina-embeddings-v2-base-en` in `.env.example` reaches the code through
`os.getenv("MODEL_EMBEDDING")` (python-dotenv's `load_dotenv()` looks for `.env` from the calling module's
folder upwards; compose and Dockerfiles sit at or above the service's code). So the values of K for a module
are those written in the env files of its folder and of every folder above it up to the scanned root. Only
pairs whose value names a v1/v2/v3 Jina model are kept: nothing else is ever needed, so the parse can stay a
loose line match. Each folder is listed once per change (keyed by its mtime) and each file read once per
change (keyed by size and mtime: `apply` may rewrite it between two plans in one process).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from jmigrate.models import V3
from jmigrate.scan.text import model_matches

_MAX_SIZE = 1 << 20
# KEY=value / export KEY=value / KEY = "value" (.env), `- KEY=value` / `KEY: value` (compose environment),
# ENV KEY=value / ENV KEY value / ARG KEY=value (Dockerfile).
_PAIR = re.compile(
    r"""^[ \t]*(?:-[ \t]*|export[ \t]+|(?:ENV|ARG)[ \t]+)?["']?(?P<key>[A-Za-z_][A-Za-z0-9_]*)["']?"""
    r"""(?:[ \t]*[=:][ \t]*|[ \t]+)["']?(?P<value>[^"'\s#]+)""",
    re.M,
)


def is_env_file(name: str) -> bool:
    """Files that set environment variables for the code: .env, .env.*, *.env, compose files, Dockerfiles."""
    low = name.lower()
    return (
        low == ".env"
        or low.startswith(".env.")
        or low.endswith(".env")
        or (low.startswith(("docker-compose", "compose")) and low.endswith((".yml", ".yaml")))
        or low == "dockerfile"
        or low.startswith("dockerfile.")
        or low.endswith(".dockerfile")
    )


def _names_a_model(value: str) -> bool:
    return V3 in value or any(True for _ in model_matches(value))


def env_pairs(text: str) -> dict[str, frozenset[str]]:
    """KEY -> the values set for it in one env file's text, for values that name a Jina model."""
    if "jina" not in text.lower():
        return {}
    out: dict[str, set[str]] = {}
    for m in _PAIR.finditer(text):
        value = m.group("value")
        if _names_a_model(value):
            out.setdefault(m.group("key"), set()).add(value)
    return {k: frozenset(v) for k, v in out.items()}


def legacy_env_pairs(text: str) -> dict[str, set[str]]:
    """KEY -> the replaced v1/v2 models an env file's text sets it to (uncommented lines only)."""
    pairs = env_pairs("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    out: dict[str, set[str]] = {}
    for k, values in pairs.items():
        models = {m.model.name for v in values for m in model_matches(v) if m.model.replacement is not None}
        if models:
            out[k] = models
    return out


@lru_cache(maxsize=1024)
def _file_pairs(path: str, mtime_ns: int, size: int) -> dict[str, frozenset[str]]:
    try:
        text = Path(path).read_bytes().decode("utf-8", "replace")
    except OSError:
        return {}
    # A commented line sets nothing.
    return env_pairs("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))


@lru_cache(maxsize=1024)
def _env_files(folder: str, mtime_ns: int) -> tuple[str, ...]:
    """The env files of a folder (its mtime changes when files are added or removed)."""
    try:
        with os.scandir(folder) as it:
            return tuple(
                e.path for e in it if is_env_file(e.name) and e.is_file(follow_symlinks=False)
            )
    except OSError:
        return ()


def _folder_pairs(folder: Path) -> dict[str, frozenset[str]]:
    try:
        files = _env_files(str(folder), folder.stat().st_mtime_ns)
    except OSError:
        return {}
    out: dict[str, frozenset[str]] = {}
    for path in files:
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            continue
        if st.st_size > _MAX_SIZE:
            continue
        for k, v in _file_pairs(path, st.st_mtime_ns, st.st_size).items():
            out[k] = out.get(k, frozenset()) | v
    return out


def env_values(root: str, module_path: str, key: str, *, ignore_case: bool = False) -> frozenset[str]:
    """Values that name a Jina model set for `key` in the env files of `module_path`'s folder and the folders
    above it, up to `root` (the scanned folder). `module_path` is relative to `root`. `ignore_case` for
    pydantic settings (their environment names are case-insensitive by default)."""
    if not root:
        return frozenset()
    top = Path(root)
    folder = (top / module_path).parent
    want = key.lower() if ignore_case else key
    out: set[str] = set()
    while True:
        for k, v in _folder_pairs(folder).items():
            if (k.lower() if ignore_case else k) == want:
                out |= v
        if folder == top or top not in folder.parents:
            break
        folder = folder.parent
    return frozenset(out)
