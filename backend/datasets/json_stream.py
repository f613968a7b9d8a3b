"""Limits on what one dataset record may be, and a top-level JSON array read one element at a time.

Why streaming: a 500 MB ``.json`` array read whole costs its size several times over in Python objects (the
text, then every dict); here only one element is alive at a time. Why ``ijson.basic_parse`` (yajl's C parser,
events without paths) and our own small builder instead of ``ijson.items``: ``items`` keeps the path prefix of
every nesting level as a string, so its memory grows with the *square* of the nesting depth (a 200 KB file of
``[[[[...`` took gigabytes). The builder here stops building past ``MAX_DEPTH`` and the reader stops reading
past ``MAX_RECORD_BYTES`` for one element, so memory stays bounded by one record whatever the file holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import ijson

from backend.datasets.errors import Problem

MAX_DEPTH = 64  # tool-call arguments nest a few levels; nothing real nests 64
MAX_RECORD_BYTES = 16 * 1024 * 1024
_CONTAINERS = {"start_map": dict, "start_array": list}
# Up to this size a broken JSON array is parsed a second time, whole, to say at which line and column it breaks.
LOCATE_ERRORS_UP_TO = 64 * 1024 * 1024
JSON_HINT = ("Check the quoting and commas around this position (a JSON validator such as `python -m json.tool "
             "FILE` shows the spot).")


class RecordTooLarge(Exception):
    """One record (line, element, CSV row, text block) is larger than MAX_RECORD_BYTES."""


class CountingReader:
    """A binary file wrapper that refuses to read more than ``limit`` bytes past ``mark()``."""

    def __init__(self, fh: BinaryIO, limit: int = MAX_RECORD_BYTES):
        self.fh, self.limit, self.count, self.start = fh, limit, 0, 0

    def mark(self) -> None:
        self.start = self.count

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.count += len(data)
        if self.count - self.start > self.limit + 2 * (size if size and size > 0 else 0):
            raise RecordTooLarge()
        return data


def nesting_problem(value: Any, max_depth: int = MAX_DEPTH) -> str | None:
    """The top-level field (or "" for the record itself) under which ``value`` nests deeper than ``max_depth``,
    or None. Iterative, so it cannot itself run out of recursion."""
    items = value.items() if isinstance(value, dict) else [("", value)]
    for field, top in items:
        stack = [(top, 2 if isinstance(value, dict) else 1)]
        while stack:
            node, depth = stack.pop()
            if depth > max_depth:
                return str(field)
            children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return None


def deepest_field(text: str, max_depth: int = MAX_DEPTH) -> str:
    """For a JSON text too deep to parse: the top-level key whose value passes ``max_depth`` ("" if none).
    A character scan, used only on that error path."""
    depth, in_string, escaped, key, last_string, start = 0, False, False, "", "", 0
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string, last_string = False, text[start:index]
        elif char == '"':
            in_string, start = True, index + 1
        elif char == ":" and depth == 1:
            key = last_string
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return key
        elif char in "]}":
            depth -= 1
    return key


def _attach(container: dict | list, key: str | None, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
    else:
        container.append(value)


def _take_value(first: str, scalar: Any, events: Iterator[tuple[str, Any]]) -> tuple[Any, str | None]:
    """The JSON value that starts with (first, scalar), built from ``events`` until it closes, or (None, field)
    when it nests deeper than MAX_DEPTH (its remaining events are consumed without building anything)."""
    if first not in _CONTAINERS:
        return scalar, None
    root = _CONTAINERS[first]()
    stack: list[Any] = [root]
    key, top_key, too_deep = None, None, None
    for event, value in events:
        if event == "map_key":
            key = value
            if len(stack) == 1:
                top_key = value
        elif event in ("end_map", "end_array"):
            stack.pop()
            if not stack:
                return (None, too_deep) if too_deep is not None else (root, None)
        elif event in _CONTAINERS:
            child = _CONTAINERS[event]()
            if too_deep is None:
                _attach(stack[-1], key, child)
                if len(stack) + 1 > MAX_DEPTH:
                    too_deep = str(top_key or "")
            stack.append(child)
        elif too_deep is None:
            _attach(stack[-1], key, value)
    raise ijson.IncompleteJSONError("the file ends inside a record")


def iter_array_elements(fh: BinaryIO) -> Iterator[tuple[int, Any, str | None]]:
    """(number, value, too_deep_field) for each element of the top-level JSON array in ``fh`` (positioned at
    its ``[``, after any BOM). Raises ijson.JSONError on broken JSON (also after the closing ``]``) and
    RecordTooLarge when one element is longer than MAX_RECORD_BYTES."""
    reader = CountingReader(fh)
    events = iter(ijson.basic_parse(reader, use_float=True, buf_size=64 * 1024))
    first = next(events, ("", None))
    if first[0] != "start_array":
        raise ijson.IncompleteJSONError("the file does not start with a JSON array")
    number = 0
    for event, scalar in events:
        if event == "end_array":
            break
        number += 1
        reader.mark()
        value, too_deep = _take_value(event, scalar, events)
        yield number, value, too_deep
    for _ in events:  # anything after the closing ']' is an error ijson raises here
        pass


def located_array_problem(path: Path, number: int, err: Exception) -> Problem:
    """The problem of a broken array (record ``number`` per the stream): with line and column, from a second
    whole parse, for files up to LOCATE_ERRORS_UP_TO; in the streaming parser's own words for larger ones."""
    if path.stat().st_size <= LOCATE_ERRORS_UP_TO:
        text = path.read_text(encoding="utf-8-sig")
        try:
            problem = first_array_problem(text)
        except RecursionError:
            problem = None
        if problem is not None:
            return problem
    reason = str(err).strip().splitlines()[0] if str(err).strip() else "broken JSON"
    return Problem(f"record {number}", f"not valid JSON: {reason}. {JSON_HINT} Records after this point were not "
                                       "read.")


def first_array_problem(text: str) -> Problem | None:
    """Decode the top-level array in ``text`` one element at a time; the first problem, named by its record."""
    decoder = json.JSONDecoder()
    index, number = _skip_ws(text, _skip_ws(text, 0) + 1), 0
    if text.startswith("]", index):
        return None
    while True:
        number += 1
        try:
            _, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError as err:
            return _array_problem(number, err)
        index = _skip_ws(text, index)
        if text.startswith("]", index):
            tail = _skip_ws(text, index + 1)
            if tail < len(text):
                return _array_problem(number, json.JSONDecodeError("Extra data after the closing ']'", text, tail))
            return None
        if not text.startswith(",", index):
            return _array_problem(number, json.JSONDecodeError("Expecting ',' delimiter", text, index))
        index = _skip_ws(text, index + 1)


def _array_problem(number: int, err: json.JSONDecodeError) -> Problem:
    return Problem(
        f"record {number}",
        f"not valid JSON at line {err.lineno}, column {err.colno}: {err.msg}. {JSON_HINT} "
        "Records after this point were not read.",
    )


def _skip_ws(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index
