"""Generated pages that keep a reader's notes: everything below the marker survives a rewrite.

A generator writes its lines with ``write_keeping(out, text, command)``; hand-written reading of
the numbers (a paragraph that answers a question against the papers, say) goes below the marker
and is carried over verbatim each time the page is regenerated.
"""

from __future__ import annotations

from pathlib import Path


def marker(command: str) -> str:
    """The line that separates generated text from kept notes."""
    return f"<!-- notes: everything below this line is kept when `{command}` rewrites the file -->"


def kept_notes(out: Path) -> str:
    """The text below any notes marker of ``out`` ('' when the file or the marker is missing)."""
    if not out.exists():
        return ""
    _, sep, tail = out.read_text().partition(marker("").split("`", 1)[0])  # any command's marker
    return tail.split("-->", 1)[1] if sep and "-->" in tail else ""


def write_keeping(out: Path, text: str, command: str) -> Path:
    """Write ``text``, the marker, then the notes the old file had below its marker."""
    notes = kept_notes(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text.rstrip("\n") + "\n\n" + marker(command) + (notes if notes else "\n"))
    return out
