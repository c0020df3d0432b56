"""Reports from any recorded run: terminal (tabulate), Markdown, a static HTML
page, JSON and JUnit XML. Each renderer takes a store.Run and returns text."""

from __future__ import annotations
from . import html, jsonout, junit, markdown, terminal

FORMATS = ("terminal", "markdown", "html", "json", "junit")


def render(run, fmt: str) -> str:
    return {"terminal": terminal.render, "markdown": markdown.render, "html": html.render,
            "json": jsonout.render, "junit": junit.render}[fmt](run)
