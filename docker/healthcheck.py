"""The image's HEALTHCHECK (standard library only, run as `python3 -I`): asks the server that this container runs.

What runs is read from PID 1's command line (tini -- /app/docker/entrypoint.sh WHAT ...):
- `dashboard` (the default): GET /_stcore/health on $STREAMLIT_SERVER_PORT (or --server.port);
- `serve`: GET /healthz on $DEEPFAKE_API_PORT (or --port);
- anything else (`scan`, `analyze`, a shell): healthy while it runs;
- no entrypoint.sh on PID 1's command line (the entrypoint was replaced): healthy when either server answers.
Exit 0 healthy, 1 unhealthy, as HEALTHCHECK expects."""
from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 8.0
ANY_ADDRESS = {"", "0.0.0.0", "::", "[::]"}


def entry_args(path: str = "/proc/1/cmdline") -> list[str] | None:
    """The words after entrypoint.sh on PID 1's command line, or None when it is not there."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    words = [w.decode("utf-8", "replace") for w in raw.split(b"\0") if w]
    for i, word in enumerate(words):
        if word.endswith("entrypoint.sh"):
            return words[i + 1:]
    return None


def option(args: list[str], name: str, default: str) -> str:
    """The last `name VALUE` or `name=VALUE` in args, else default."""
    value = default
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def url(host: str, port: str, path: str) -> str:
    host = "127.0.0.1" if host in ANY_ADDRESS else host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


def dashboard_url(args: list[str]) -> str:
    env = os.environ
    return url(option(args, "--server.address", env.get("STREAMLIT_SERVER_ADDRESS", "")),
               option(args, "--server.port", env.get("STREAMLIT_SERVER_PORT", "8501")), "/_stcore/health")


def api_url(args: list[str]) -> str:
    env = os.environ
    return url(option(args, "--host", env.get("DEEPFAKE_API_HOST", "")),
               option(args, "--port", env.get("DEEPFAKE_API_PORT", "8000")), "/healthz")


def answers(address: str) -> bool:
    try:
        with urllib.request.urlopen(address, timeout=TIMEOUT_S) as response:  # noqa: S310 (loopback, fixed scheme)
            ok = response.status == 200
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"unhealthy: {address}: {exc}")
        return False
    print(f"{'healthy' if ok else 'unhealthy'}: {address}")
    return ok


def main() -> int:
    args = entry_args()
    if args is None:
        return 0 if any(answers(u) for u in (dashboard_url([]), api_url([]))) else 1
    what = args[0] if args else "dashboard"
    if what == "dashboard":
        return 0 if answers(dashboard_url(args[1:])) else 1
    if what == "serve":
        return 0 if answers(api_url(args[1:])) else 1
    print(f"healthy: {what} is running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
