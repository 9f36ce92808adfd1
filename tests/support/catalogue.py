"""What the web catalogue's tests share: hostile publisher text, a Trivy report carrying it, and
a check that a page's markup holds only the catalogue's own elements.

Public API: :data:`HOSTILE_TEXT`, :data:`HOSTILE_ID`, :func:`hostile_report`, :func:`trivy_report`,
:func:`markup_problems`.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

__all__ = ["HOSTILE_ID", "HOSTILE_TEXT", "hostile_report", "markup_problems", "trivy_report"]

#: A description a publisher may write (the manifest allows it): a script, an image with an
#: event handler, a javascript: link, entities, a right-to-left override, a closing tag of the
#: page's own structure. 1000 characters, the manifest's limit.
HOSTILE_TEXT = ('<script>alert("desc")</script><img src=x onerror=alert(1)>'
                '<a href="javascript:alert(2)">click</a> &lt;b&gt;bold&lt;/b&gt; &amp;amp; '
                "\u202egnp.exe</main></body>'\"")
HOSTILE_TEXT = HOSTILE_TEXT + "x" * (1000 - len(HOSTILE_TEXT))

#: A vulnerability id (publisher-reported scans carry whatever the report says).
HOSTILE_ID = '<script>alert("cve")</script>javascript:alert(3)'


def hostile_report(image: str) -> str:
    """A Trivy report about ``image`` whose vulnerability id, package and versions are hostile
    and 10 kB long."""
    long = "<b>" + "A" * 10_000 + "</b>"
    return json.dumps({
        "SchemaVersion": 2, "ArtifactName": image, "ArtifactType": "container_image",
        "Metadata": {"RepoDigests": [image]},
        "Results": [{"Target": image, "Class": "os-pkgs", "Type": "alpine", "Secrets": [],
                     "Vulnerabilities": [
                         {"VulnerabilityID": HOSTILE_ID, "Severity": "HIGH", "PkgName": long,
                          "InstalledVersion": "<i>1</i>", "FixedVersion": "\u202e2"},
                         {"VulnerabilityID": "CVE-2024-12345", "Severity": "LOW", "PkgName": "zlib",
                          "InstalledVersion": "1.2", "FixedVersion": "1.3"}]}],
    })


def trivy_report(image: str, vulnerabilities: list[tuple[str, str]]) -> str:
    """A Trivy report about ``image`` listing ``(id, severity)`` vulnerabilities of one package."""
    return json.dumps({
        "SchemaVersion": 2, "ArtifactName": image, "ArtifactType": "container_image",
        "Metadata": {"RepoDigests": [image]},
        "Results": [{"Target": image, "Class": "os-pkgs", "Type": "alpine", "Secrets": [],
                     "Vulnerabilities": [{"VulnerabilityID": i, "Severity": sev, "PkgName": "zlib",
                                          "InstalledVersion": "1.2", "FixedVersion": "1.3"}
                                         for i, sev in vulnerabilities]}]})


#: Elements the catalogue's templates use; anything else in a page came from someone's text.
_OURS = frozenset({"html", "head", "meta", "title", "link", "script", "body", "a", "header", "nav", "ul",
                   "ol", "li", "main", "footer", "p", "h1", "h2", "h3", "form", "div", "label", "input",
                   "select", "option", "button", "section", "span", "bdi", "strong", "em", "code", "pre",
                   "article", "dl", "dt", "dd", "details", "summary", "table", "caption", "thead",
                   "tbody", "tr", "th", "td", "time", "br"})


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _OURS:
            self.problems.append(f"unexpected element <{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler {name} on <{tag}>")
            if name in ("href", "src", "action") and value is not None:
                if ":" in value.split("/", 1)[0] and not value.startswith("https://"):
                    self.problems.append(f"{name}={value!r} on <{tag}>")
        if tag == "script" and not dict(attrs).get("src"):
            self.problems.append("an inline <script>")


def markup_problems(html: str) -> list[str]:
    """Every element, event handler, inline script or non-``https:`` absolute URL in ``html``
    that the catalogue's templates do not write (empty: the page is what the templates made)."""
    c = _Collector()
    c.feed(html)
    c.close()
    return c.problems
