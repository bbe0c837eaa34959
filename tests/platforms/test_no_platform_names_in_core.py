"""Nothing outside ``platforms/`` compares anything with a network's name: the core reads spec data instead.

A comparison like ``platform == "x"``, ``account.platform != "youtube"`` or ``name in ("facebook",
"instagram")`` (in Python code or a Jinja template) means a fact about a network lives outside its
package; put it in the network's ``PlatformSpec`` and read it from there.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from ainfluencer.platforms.registry import DEFAULT

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "ainfluencer"
NAMES = frozenset(DEFAULT.names())


def _literal_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in NAMES:
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [n for elt in node.elts for n in _literal_names(elt)]
    return []


def python_violations(source: str, where: str) -> list[str]:
    """``file:line name`` for every comparison of a value with a registered network's name literal."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        found = [n for side in (node.left, *node.comparators) for n in _literal_names(side)]
        found += [n for key in getattr(node, "keys", []) for n in _literal_names(key)]
        out.extend(f"{where}:{node.lineno} compares with {name!r}" for name in found)
    return out


# In templates only a platform-ish value counts (an icon may well be called "x").
_TEMPLATE = re.compile(r"""[\w.]*platform[\w.]*\s*(?:==|!=)\s*["'](?P<a>[a-z]+)["']"""
                       r"""|["'](?P<b>[a-z]+)["']\s*(?:==|!=)\s*[\w.]*platform""")


def template_violations(source: str, where: str) -> list[str]:
    """The same check for Jinja templates (``{% if meth.platform == "mastodon" %}``)."""
    out = []
    for lineno, line in enumerate(source.splitlines(), start=1):
        for m in _TEMPLATE.finditer(line):
            name = m.group("a") or m.group("b")
            if name in NAMES:
                out.append(f"{where}:{lineno} compares with {name!r}")
    return out


def _outside_platforms(pattern: str) -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob(pattern)) if "platforms" not in p.relative_to(PACKAGE).parts[:1]]


def test_the_guard_catches_each_shape() -> None:
    code = ('if platform == "x": pass\nif "youtube" != account.platform: pass\n'
            'if name in ("facebook", "instagram"): pass\nif kind == "caption" or p in {"", other}: pass\n')
    assert [v.split(" ", 1)[1] for v in python_violations(code, "f.py")] == [
        "compares with 'x'", "compares with 'youtube'", "compares with 'facebook'", "compares with 'instagram'"]
    assert template_violations('{% if meth.platform == "mastodon" %}{% if name == "x" %}', "t.html") == [
        "t.html:1 compares with 'mastodon'"]


def test_no_code_outside_platforms_compares_with_a_network_name() -> None:
    files = _outside_platforms("*.py")
    assert len(files) > 50  # the walk found the package
    problems = [v for p in files for v in python_violations(p.read_text(), str(p.relative_to(PACKAGE)))]
    assert problems == [], "network facts outside platforms/ (move them into the spec):\n" + "\n".join(problems)


def test_no_template_compares_with_a_network_name() -> None:
    files = _outside_platforms("*.html")
    assert files
    problems = [v for p in files for v in template_violations(p.read_text(), str(p.relative_to(PACKAGE)))]
    assert problems == [], "network facts in templates (read them from the spec):\n" + "\n".join(problems)
