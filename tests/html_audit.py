"""What the Content-Security-Policy would refuse, found in a page's HTML before a browser does.

Kami's policy allows scripts and styles from the shop's own origin only, so a page must carry
no inline ``<script>`` (a ``<script type="application/json">`` data block is fine: it never
runs), no ``on*=`` handler, no ``javascript:`` URL, no ``<style>`` element and no ``style=``
attribute.
"""

from __future__ import annotations

from html.parser import HTMLParser

DATA_SCRIPT_TYPES = frozenset({"application/json", "application/ld+json"})
URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "xlink:href"})


class _InlineFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_script: str | None = None
        self._script_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…> handler")
            elif name == "style":
                self.found.append(f"<{tag} style=…> attribute")
            elif name in URL_ATTRIBUTES and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}> javascript: URL")
        if tag == "style":
            self.found.append("<style> element")
        if tag == "script":
            kind = (attributes.get("type") or "").strip().lower()
            if attributes.get("src") or kind in DATA_SCRIPT_TYPES:
                self._in_script = None
            else:
                self._in_script = kind or "text/javascript"
                self._script_text = []

    def handle_data(self, data: str) -> None:
        if self._in_script is not None:
            self._script_text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._in_script is not None:
            text = "".join(self._script_text).strip()
            self.found.append(f"inline <script> ({self._in_script}): {text[:60]!r}")
            self._in_script = None


def inline_code(html: str) -> list[str]:
    """Every inline script, handler, ``javascript:`` URL and inline style in ``html``."""
    finder = _InlineFinder()
    finder.feed(html)
    finder.close()
    return finder.found


def csp_directives(header: str) -> dict[str, set[str]]:
    """``"default-src 'self'; img-src 'self' data:"`` → ``{"default-src": {"'self'"}, …}``."""
    directives: dict[str, set[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = set(words[1:])
    return directives


# Reported by Chromium for every refused script, style, image, connection or form target; the
# listener is installed through Playwright (CDP), which the page's own policy does not govern.
_VIOLATION_LISTENER = """
window.addEventListener("securitypolicyviolation", (event) => {
  window.__kamiCspViolation(
    `${event.effectiveDirective} refused ${event.blockedURI || "inline"} ` +
    `(${event.sourceFile || document.location.href}:${event.lineNumber})`
  );
}, true);
"""
_CONSOLE_MARKERS = ("Content Security Policy", "Refused to", "Permissions-Policy")


def watch_csp_violations(context) -> list[str]:
    """Collect every CSP violation (and Permissions-Policy header error) in the Playwright
    browser ``context``'s pages, from the ``securitypolicyviolation`` events and the console,
    and every page served without a Content-Security-Policy."""
    found: list[str] = []
    context.expose_binding("__kamiCspViolation", lambda source, text: found.append(text))
    context.add_init_script(_VIOLATION_LISTENER)

    def on_console(message) -> None:
        if any(marker in message.text for marker in _CONSOLE_MARKERS):
            found.append(f"console {message.type}: {message.text}")

    def on_response(response) -> None:
        # Every page must carry the policy (error pages under DEBUG are django-csp's exception).
        if (
            response.request.resource_type == "document"
            and response.status < 400
            and "content-security-policy" not in response.headers
        ):
            found.append(f"no Content-Security-Policy on {response.url}")

    context.on("console", on_console)
    context.on("response", on_response)
    return found
