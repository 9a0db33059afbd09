"""The web console: a static single-page app served by the control plane at ``/``.

The console is plain ES modules and hand-written SVG, committed as they are: nothing is built at
install time and nothing is fetched from the internet at runtime. It talks to the server only through
the public REST API under ``/api/v1`` (the same calls the SDK makes), so it can never do what a user
with the same token could not.
"""

from __future__ import annotations

from kamado.web.mount import CONSOLE_HEADERS, STATIC_DIR, mount_console

__all__ = ["CONSOLE_HEADERS", "STATIC_DIR", "mount_console"]
