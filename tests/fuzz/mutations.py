"""Strategies for hostile inputs: odd values, and mutations of valid documents (JSON/YAML trees,
XML elements, whitespace- or comma-separated text, raw bytes).

Structure-aware mutations start from a document a format wrote itself, so most inputs get past
the first parse and reach the code that interprets fields.
"""

from __future__ import annotations

import copy
import math
import xml.etree.ElementTree as ET
from typing import Any

from hypothesis import strategies as st

_NUMBERS: list[Any] = [
    0,
    -1,
    -(2**31),
    2**31,
    2**63,
    -(2**63) - 1,
    10**30,
    10**400,
    -(10**400),
    math.nan,
    math.inf,
    -math.inf,
    1e308,
    -1e308,
    5e-324,
    -0.0,
    0.5,
]
_STRINGS = [
    "",
    " ",
    "nan",
    "inf",
    "-inf",
    "-1",
    "1e400",
    "-1e400",
    "9" * 400,
    "0x1F",
    "1,2",
    "١٢",  # Arabic-Indic digits: int() accepts them
    "true",
    "null",
    "..",
    "../../etc/passwd",
    "%2e%2e/x",
    "/etc/passwd",
    "http://[::1/a.png",
    "s3://b/%2e%2e/a.png",
    "C:\\x",
    "a\x00b",
    "Ünïcødé ✓ 猫",
    "\u202e",
    "{}",
    "[]",
]


def deep(depth: int, leaf: Any = 0) -> Any:
    """``leaf`` inside ``depth`` nested lists and dicts, alternating."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


def odd_strings() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(_STRINGS), st.text(max_size=12), st.integers().map(str))


def odd_numbers() -> st.SearchStrategy[Any]:
    """Numbers at the edges: NaN, infinities, integers too large for a float or an int64."""
    return st.one_of(st.sampled_from(_NUMBERS), st.sampled_from(_NUMBERS), st.integers(), st.floats())


def odd_scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        odd_numbers(),
        odd_strings(),
    )


def odd_values() -> st.SearchStrategy[Any]:
    """Any JSON-like value: scalars of every type, small containers, and very deep nesting."""
    containers = st.recursive(
        odd_scalars(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd_strings(), inner, max_size=3),
        max_leaves=6,
    )
    return st.one_of(odd_scalars(), containers, st.integers(50, 400).map(deep))


def _slots(tree: Any) -> list[tuple[Any, Any]]:
    """Every ``(container, key)`` under ``tree``; ``(None, None)`` stands for the root."""
    out: list[tuple[Any, Any]] = [(None, None)]
    stack = [tree]
    while stack:
        node = stack.pop()
        children = (
            node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        )
        for key, child in children:
            out.append((node, key))
            stack.append(child)
    return out


def mutate_tree(data: st.DataObject, tree: Any, max_edits: int = 3) -> Any:
    """A copy of a JSON/YAML tree with 1..``max_edits`` edits: a value replaced by an odd one,
    a key or item removed, a value wrapped in a list or dict, turned into a string or negated,
    an item duplicated or an extra key added."""
    tree = copy.deepcopy(tree)
    for _ in range(data.draw(st.integers(1, max_edits), label="edits")):
        parent, key = data.draw(st.sampled_from(_slots(tree)), label="slot")
        old = tree if parent is None else parent[key]
        action = data.draw(
            st.sampled_from(["replace", "delete", "wrap", "stringify", "negate", "duplicate", "add"]),
            label="action",
        )
        new: Any
        if action == "delete" and parent is not None:
            del parent[key]
            continue
        if action == "add" and isinstance(old, dict):
            old[data.draw(odd_strings(), label="key")] = data.draw(odd_values(), label="value")
            continue
        if action == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(old))
            continue
        if action == "wrap":
            new = data.draw(st.sampled_from([[old], {"value": old}]), label="wrapped")
        elif action == "stringify":
            new = str(old)
        elif action in ("replace", "negate") and isinstance(old, int | float) and not isinstance(old, bool):
            new = data.draw(st.just(-old) | odd_numbers(), label="number")
        else:
            new = data.draw(odd_values(), label="value")
        if parent is None:
            tree = new
        else:
            parent[key] = new
    return tree


def mutate_xml(data: st.DataObject, text: str, max_edits: int = 3) -> str:
    """An XML document with 1..``max_edits`` edits to its elements: attribute values and text
    set to odd strings, attributes or elements removed, elements duplicated, deep nesting added."""
    root = ET.fromstring(text)  # noqa: S314 - a document the test wrote
    for _ in range(data.draw(st.integers(1, max_edits), label="edits")):
        elements = list(root.iter())
        element = data.draw(st.sampled_from(elements), label="element")
        action = data.draw(
            st.sampled_from(["attribute", "drop-attribute", "text", "remove", "duplicate", "nest"]),
            label="action",
        )
        names = sorted(element.attrib)
        if action == "attribute":
            known = st.sampled_from(names) if names else st.nothing()
            name = data.draw(known | odd_strings().filter(str.isidentifier), label="name")
            element.set(name, data.draw(odd_strings(), label="value"))
        elif action == "drop-attribute" and names:
            del element.attrib[data.draw(st.sampled_from(names), label="name")]
        elif action in ("remove", "duplicate") and len(element):
            child = data.draw(st.sampled_from(list(element)), label="child")
            if action == "remove":
                element.remove(child)
            else:
                element.append(copy.deepcopy(child))
        elif action == "nest":
            node = element
            for _level in range(data.draw(st.integers(1, 300), label="depth")):
                node = ET.SubElement(node, "object")
        else:
            element.text = data.draw(odd_strings(), label="text")
    return ET.tostring(root, encoding="unicode")


def mutate_text(data: st.DataObject, text: str, separator: str, max_edits: int = 3) -> str:
    """Lines of ``separator``-separated tokens with 1..``max_edits`` edits: a token replaced by an
    odd string, removed or repeated, a line removed or repeated."""
    lines = [line.split(separator) for line in text.splitlines()] or [[""]]
    for _ in range(data.draw(st.integers(1, max_edits), label="edits")):
        row = data.draw(st.integers(0, len(lines) - 1), label="line")
        tokens = lines[row]
        action = data.draw(
            st.sampled_from(["replace", "drop", "repeat", "drop-line", "repeat-line"]), label="action"
        )
        column = data.draw(st.integers(0, max(0, len(tokens) - 1)), label="column")
        if action == "drop-line" and len(lines) > 1:
            del lines[row]
        elif action == "repeat-line":
            lines.insert(row, list(tokens))
        elif action == "drop" and tokens:
            del tokens[column]
        elif action == "repeat" and tokens:
            tokens.insert(column, tokens[column])
        elif tokens:
            tokens[column] = data.draw(odd_strings(), label="token")
        else:
            tokens.append(data.draw(odd_strings(), label="token"))
    return "\n".join(separator.join(tokens) for tokens in lines) + "\n"


def mutate_bytes(data: st.DataObject, raw: bytes, max_edits: int = 4) -> bytes:
    """``raw`` with a few bytes flipped, inserted or removed, or cut short."""
    out = bytearray(raw)
    for _ in range(data.draw(st.integers(1, max_edits), label="edits")):
        at = data.draw(st.integers(0, len(out)), label="at")
        action = data.draw(st.sampled_from(["set", "insert", "delete", "truncate"]), label="action")
        if action == "truncate":
            del out[at:]
        elif action == "insert" or at == len(out):
            out[at:at] = data.draw(st.binary(min_size=1, max_size=8), label="inserted")
        elif action == "delete":
            del out[at : at + data.draw(st.integers(1, 8), label="length")]
        else:
            out[at] = data.draw(st.integers(0, 255), label="byte")
    return bytes(out)
