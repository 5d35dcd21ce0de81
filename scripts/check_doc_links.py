"""Check that every relative link in README.md and docs/*.md points at a file that exists
and, when it has one, at an anchor of a heading in that file (GitHub's anchor rules).

Usage: ``.venv/bin/python scripts/check_doc_links.py [FILE ...]``; exits 1 naming each broken
link. External links (``http:``, ``https:``, ``mailto:``) are not followed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"`+[^`]*`+")


def without_code(text: str) -> list[str]:
    """The file's lines with fenced blocks blanked, so links and headings in code are ignored."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            lines.append("")
        else:
            lines.append("" if fenced else line)
    return lines


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of ``path``: lowercase, punctuation dropped, spaces as -."""
    seen: dict[str, int] = {}
    found = set()
    for line in without_code(path.read_text()):
        match = HEADING.match(line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(2).replace("`", "").lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(path: Path) -> list[str]:
    problems = []
    for number, line in enumerate(without_code(path.read_text()), start=1):
        for match in LINK.finditer(CODE_SPAN.sub("", line)):
            target = match.group(1)
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            where = f"{path.relative_to(ROOT)}:{number}: {target}"
            if not resolved.exists():
                problems.append(f"{where}: no such file")
            elif anchor and (resolved.is_dir() or resolved.suffix != ".md"):
                problems.append(f"{where}: an anchor into a file that is not Markdown")
            elif anchor and anchor not in anchors(resolved):
                problems.append(f"{where}: no heading with this anchor")
    return problems


def main(argv: list[str]) -> int:
    paths = [Path(arg).resolve() for arg in argv] or [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    problems = [problem for path in paths for problem in broken_links(path)]
    for problem in problems:
        print(problem)
    print(f"{len(paths)} files checked, {len(problems)} broken links")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
