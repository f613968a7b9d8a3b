"""A renderer for the small subset of Go's text/template that our Ollama TEMPLATEs use.

Ollama renders a Modelfile's TEMPLATE with Go's text/template over ``{"System": str, "Messages": [{"Role",
"Content"}...]}``. We emit only these actions, so we can check, without Ollama, that a TEMPLATE we write renders
the same prompt as the model's own Hugging Face chat template:

    {{ .System }}  {{ .Role }}  {{ .Content }}
    {{ if .System }} / {{ if not .System }} / {{ if eq .Role "user" }} ... {{ else if eq .Role "x" }} ...
    {{ else }} ... {{ end }}
    {{ range .Messages }} ... {{ end }}

Anything else raises ``TemplateSyntaxError`` (so a TEMPLATE we cannot check is never written). Trim markers
(``{{-``) are not supported on purpose: our templates spell every newline literally.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_FIELD = re.compile(r"^\.(System|Role|Content)$")
_EQ = re.compile(r'^eq \.(Role) "([^"\\]*)"$')


class TemplateSyntaxError(ValueError):
    """The template uses something outside the supported subset."""


@dataclass
class _Cond:
    """``.System`` / ``not .System`` / ``eq .Role "x"``, evaluated against the current dot."""

    kind: str  # "truthy" | "not" | "eq"
    name: str
    value: str = ""

    def test(self, dot: dict) -> bool:
        current = str(dot.get(self.name) or "")
        if self.kind == "eq":
            return current == self.value
        return bool(current) if self.kind == "truthy" else not current


@dataclass
class _If:
    branches: list[tuple[_Cond, list]] = field(default_factory=list)
    otherwise: list = field(default_factory=list)


@dataclass
class _Range:
    body: list


def _condition(expr: str) -> _Cond:
    expr = expr.strip()
    if match := _EQ.match(expr):
        return _Cond("eq", match.group(1), match.group(2))
    negated = expr.startswith("not ")
    match = _FIELD.match(expr[4:].strip() if negated else expr)
    if not match:
        raise TemplateSyntaxError(f"unsupported condition {expr!r}")
    return _Cond("not" if negated else "truthy", match.group(1))


def _tokens(template: str) -> list[tuple[str, str]]:
    """``[("text", ...) | ("action", ...)]`` in order."""
    out, pos = [], 0
    for match in _ACTION.finditer(template):
        if match.start() > pos:
            out.append(("text", template[pos:match.start()]))
        action = match.group(1)
        if action.startswith("-") or action.endswith("-"):
            raise TemplateSyntaxError("trim markers ({{- / -}}) are not supported")
        out.append(("action", action.strip()))
        pos = match.end()
    if pos < len(template):
        out.append(("text", template[pos:]))
    return out


def _parse(tokens: list[tuple[str, str]], i: int, stops: tuple[str, ...]) -> tuple[list, int, str]:
    """Nodes up to one of ``stops`` (an ``end``/``else`` action); returns (nodes, next index, the stop met)."""
    nodes: list = []
    while i < len(tokens):
        kind, value = tokens[i]
        i += 1
        if kind == "text":
            nodes.append(value)
        elif value == "end" or value == "else" or value.startswith("else if "):
            if not stops:
                raise TemplateSyntaxError(f"unexpected {{{{ {value} }}}}")
            return nodes, i, value
        elif value.startswith("if "):
            node = _If()
            cond, stop = _condition(value[3:]), ""
            while True:
                body, i, stop = _parse(tokens, i, ("end", "else"))
                node.branches.append((cond, body))
                if stop.startswith("else if "):
                    cond = _condition(stop[len("else if "):])
                    continue
                break
            if stop == "else":
                node.otherwise, i, stop = _parse(tokens, i, ("end",))
                if stop != "end":
                    raise TemplateSyntaxError("{{ else }} must be followed by {{ end }}")
            nodes.append(node)
        elif value == "range .Messages":
            body, i, stop = _parse(tokens, i, ("end",))
            if stop != "end":
                raise TemplateSyntaxError("{{ range }} must end with {{ end }}")
            nodes.append(_Range(body))
        elif _FIELD.match(value):
            nodes.append(("field", value[1:]))
        else:
            raise TemplateSyntaxError(f"unsupported action {{{{ {value} }}}}")
    if stops:
        raise TemplateSyntaxError("missing {{ end }}")
    return nodes, i, ""


def parse(template: str) -> list:
    nodes, _, _ = _parse(_tokens(template), 0, ())
    return nodes


def _render(nodes: list, dot: dict, root: dict, out: list[str]) -> None:
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, tuple):
            out.append(str(dot.get(node[1]) or ""))
        elif isinstance(node, _If):
            for cond, body in node.branches:
                if cond.test(dot):
                    _render(body, dot, root, out)
                    break
            else:
                _render(node.otherwise, dot, root, out)
        else:
            for message in root["Messages"]:
                _render(node.body, message, root, out)


def render(template: str, messages: list[dict]) -> str:
    """Render like Ollama: ``.System`` is the system messages' content joined by blank lines (Ollama's
    ``collate``), ``.Messages`` every message with ``Role``/``Content``."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    root = {"System": system, "Messages": [{"Role": m["role"], "Content": m["content"]} for m in messages]}
    out: list[str] = []
    _render(parse(template), root, root, out)
    return "".join(out)
