"""Render the EDA sections as one self-contained HTML page (PNGs linked relatively)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0 auto;
       max-width: 1200px; padding: 1.5em 2em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em;
     margin-top: 2em; }
nav ol { columns: 2; } .meta { color: #666; font-size: 0.9em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
table.data { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; }
table.data th, table.data td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
table.data th { background: #f4f4f4; } .note { background: #fff7e0; border-left: 4px solid
#f2b705; padding: 0.5em 1em; } ul.findings li { margin: 0.3em 0; }
"""


@dataclass
class Section:
    """One report section: heading, generated text, figures (file name, caption), tables, notes."""

    title: str
    anchor: str
    text: list[str] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _table_html(caption: str, frame: pd.DataFrame) -> str:
    body = frame.to_html(classes="data", border=0, na_rep="", float_format=lambda v: f"{v:.3g}")
    return f"<p><strong>{html.escape(caption)}</strong></p>\n{body}"


def section_html(section: Section) -> str:
    parts = [f'<section id="{section.anchor}">', f"<h2>{html.escape(section.title)}</h2>"]
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in section.notes]
    parts += [f"<p>{html.escape(t)}</p>" for t in section.text]
    for name, caption in section.figures:
        src = html.escape(name, quote=True)
        parts.append(f'<figure><a href="{src}"><img src="{src}" alt="{html.escape(caption)}" '
                     f'loading="lazy"></a><figcaption>{html.escape(caption)}</figcaption></figure>')
    parts += [_table_html(c, f) for c, f in section.tables]
    parts.append("</section>")
    return "\n".join(parts)


def render(title: str, meta: str, summary: list[str], sections: list[Section]) -> str:
    """The whole page: title, generated summary, table of contents, sections."""
    toc = "\n".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in sections)
    findings = "\n".join(f"<li>{html.escape(s)}</li>" for s in summary)
    body = "\n".join(section_html(s) for s in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p class="meta">{html.escape(meta)}</p>
<h2 id="summary">Summary of findings</h2>
<ul class="findings">
{findings}
</ul>
<nav><h2>Contents</h2><ol>
{toc}
</ol></nav>
{body}
</body>
</html>
"""


def write(path: Path, title: str, meta: str, summary: list[str], sections: list[Section]) -> Path:
    """Write the page; every figure must already exist beside it."""
    missing = [name for s in sections for name, _ in s.figures if not (path.parent / name).exists()]
    if missing:
        raise FileNotFoundError(f"{path}: report figures not written: {missing}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(title, meta, summary, sections), encoding="utf-8")
    return path
