"""Parse untrusted CircleCI YAML without letting hostile input hang or crash the caller.

Checks run on the event stream *before* any Python objects are built:
size limit, nesting depth, and the number of nodes that aliases would expand to
(so ``&a [*a, *a ...]`` "billion laughs" bombs are rejected while ordinary
anchors/merge keys, which CircleCI configs use a lot, keep working).  An anchor defined again is, as the
YAML spec says (1.2, 3.2.2.2: anchors need not be unique), the node its later aliases refer to; PyYAML refuses
such a document, so the later definitions and their aliases are renamed before loading.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

MAX_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 100
# Real configurations have a few thousand nodes (the largest of our corpora 3,500); loading costs ~10 us a node,
# so this bounds the time any text can take to load, hostile or not.
MAX_EXPANDED_NODES = 100_000

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class ParsedConfig:
    data: dict
    text_size: int = 0
    expanded_nodes: int = 0


@dataclass
class Unparseable:
    reason: str
    data: Any = field(default=None, repr=False)

    def __bool__(self) -> bool:  # so `if parse_config(...)` reads naturally
        return False


class _Rejected(Exception):
    pass


_COLLECTION_STARTS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_COLLECTION_ENDS = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _check_events(text: str) -> tuple[int, list[tuple[int, int, str, str]]]:
    """Walk YAML events, tracking depth and the expanded size of every anchor; stop at the first limit passed,
    so the walk costs at most MAX_EXPANDED_NODES events whatever the size of the text.  Also returns the renames
    a redefined anchor needs: (line, column, `&old` or `*old`, new token) for each later definition and alias."""
    anchor_sizes: dict[str, int] = {}
    open_anchors: set[str] = set()
    renamed: dict[str, str] = {}  # anchor -> the name its latest definition gets
    renames: list[tuple[int, int, str, str]] = []
    # stack entries: [node_count, anchor_or_None]
    stack: list[list] = [[0, None]]
    total = 0  # nodes so far, aliases counted as the nodes they stand for
    for event in yaml.parse(text, Loader=_Loader):
        kind = event.__class__
        anchor = getattr(event, "anchor", None)
        if anchor and kind is not yaml.AliasEvent and (anchor in anchor_sizes or anchor in open_anchors):
            renamed[anchor] = f"{anchor}__{len(renames)}"  # PyYAML takes only [A-Za-z0-9_-]
            renames.append((event.start_mark.line, event.start_mark.column, "&" + anchor, "&" + renamed[anchor]))
        elif anchor and kind is yaml.AliasEvent and anchor in renamed:
            renames.append((event.start_mark.line, event.start_mark.column, "*" + anchor, "*" + renamed[anchor]))
        if kind is yaml.ScalarEvent:
            if event.anchor:
                anchor_sizes[event.anchor] = 1
            stack[-1][0] += 1
            total += 1
        elif kind in _COLLECTION_STARTS:
            if len(stack) > MAX_DEPTH:
                raise _Rejected(f"nesting deeper than {MAX_DEPTH} levels")
            if event.anchor:
                open_anchors.add(event.anchor)
            stack.append([1, event.anchor])
            total += 1
        elif kind in _COLLECTION_ENDS:
            size, anchor = stack.pop()
            if anchor:
                anchor_sizes[anchor] = size
                open_anchors.discard(anchor)
            stack[-1][0] += size
            continue
        elif kind is yaml.AliasEvent:
            if event.anchor in open_anchors:
                raise _Rejected(f"recursive alias *{event.anchor}")
            if event.anchor not in anchor_sizes:
                raise _Rejected(f"undefined alias *{event.anchor}")
            stack[-1][0] += anchor_sizes[event.anchor]
            total += anchor_sizes[event.anchor]
        else:
            continue
        if total > MAX_EXPANDED_NODES:
            raise _Rejected(f"more than {MAX_EXPANDED_NODES} YAML nodes once aliases are expanded (an alias bomb, "
                            "or far larger than any real configuration)")
    return total, renames


def _rename(text: str, renames: list[tuple[int, int, str, str]]) -> str:
    """``text`` with each `&old`/`*old` token at or after its event's (line, column) on that line renamed (a tag
    may stand before the anchor); one pass over the text."""
    lines = text.splitlines(keepends=True)
    by_line: dict[int, list[tuple[int, str, str]]] = {}
    for line, column, old, new in renames:
        by_line.setdefault(line, []).append((column, old, new))
    for line, edits in by_line.items():
        out, at, source = [], 0, lines[line]
        for column, old, new in sorted(edits):
            i = source.find(old, max(column, at))
            if i < 0:
                raise _Rejected(f"anchor {old[1:]} defined twice where it could not be renamed")
            out += [source[at:i], new]
            at = i + len(old)
        lines[line] = "".join(out) + source[at:]
    return "".join(lines)


def parse_config(text: str | bytes) -> ParsedConfig | Unparseable:
    """Parse a CircleCI config; never raises for bad input, returns Unparseable(reason)."""
    if text is None:
        return Unparseable("no config text")
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            return Unparseable(f"config larger than {MAX_BYTES // (1024 * 1024)} MB")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return Unparseable("config is not UTF-8 text")
    if not isinstance(text, str):
        return Unparseable(f"config must be text, got {type(text).__name__}")
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "ignore")) > MAX_BYTES:
        return Unparseable(f"config larger than {MAX_BYTES // (1024 * 1024)} MB")
    if not text.strip():
        return Unparseable("config is empty")
    try:
        nodes, renames = _check_events(text)
        data = yaml.load(_rename(text, renames) if renames else text, Loader=_Loader)  # noqa: S506 - safe loader only
    except _Rejected as exc:
        return Unparseable(str(exc))
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Unparseable(f"invalid YAML: {first}")
    except RecursionError:
        return Unparseable(f"nesting deeper than {MAX_DEPTH} levels")
    except (ValueError, TypeError, OverflowError) as exc:
        return Unparseable(f"invalid YAML value: {exc}")
    if not isinstance(data, dict):
        return Unparseable(
            f"top level must be a mapping, got {type(data).__name__ if data is not None else 'nothing'}"
        )
    return ParsedConfig(data=data, text_size=len(text), expanded_nodes=nodes)
