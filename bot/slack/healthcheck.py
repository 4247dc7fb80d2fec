"""`python -m bot.slack.healthcheck`: the container's health probe.

It asks the running server's /healthz on the port `crsbot serve` actually bound: serve writes
that port to $CRSBOT_PORT_FILE, so `serve --port 8080` is probed on 8080; without the file the
probe falls back to $PORT, then 3000. Exit 0 when /healthz answers 2xx, else 1 (what Docker's
HEALTHCHECK expects). Standard library only: it runs once every few seconds.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

DEFAULT_PORT = 3000
PORT_FILE_VARIABLE = "CRSBOT_PORT_FILE"


def probe_port(environ: dict[str, str] | None = None) -> int:
    """The port serve announced in the port file, else $PORT, else 3000."""
    environ = dict(os.environ) if environ is None else environ
    port_file = environ.get(PORT_FILE_VARIABLE)
    if port_file:
        try:
            return int(Path(port_file).read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            pass
    try:
        return int(environ.get("PORT") or DEFAULT_PORT)
    except ValueError:
        return DEFAULT_PORT


def write_port_file(port: int, environ: dict[str, str] | None = None) -> None:
    """Called by serve once bound; best effort (an unwritable file only costs the --port case)."""
    environ = dict(os.environ) if environ is None else environ
    port_file = environ.get(PORT_FILE_VARIABLE)
    if port_file:
        try:
            Path(port_file).write_text(f"{port}\n", encoding="ascii")
        except OSError:
            pass


def main() -> int:
    url = f"http://127.0.0.1:{probe_port()}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2.5) as response:  # noqa: S310 - fixed loopback URL
            return 0 if 200 <= response.status < 300 else 1
    except OSError as exc:
        print(f"crsbot health check: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
