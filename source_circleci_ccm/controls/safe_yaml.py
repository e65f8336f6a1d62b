"""Parse untrusted CircleCI YAML without letting hostile input hang or crash the caller.

Checks run on the event stream *before* any Python objects are built:
size limit, nesting depth, and the number of nodes that aliases would expand to
(so ``&a [*a, *a ...]`` "billion laughs" bombs are rejected while ordinary
anchors/merge keys, which CircleCI configs use a lot, keep working).
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


def _check_events(text: str) -> int:
    """Walk YAML events, tracking depth and the expanded size of every anchor; stop at the first limit passed,
    so the walk costs at most MAX_EXPANDED_NODES events whatever the size of the text."""
    anchor_sizes: dict[str, int] = {}
    open_anchors: set[str] = set()
    # stack entries: [node_count, anchor_or_None]
    stack: list[list] = [[0, None]]
    total = 0  # nodes so far, aliases counted as the nodes they stand for
    for event in yaml.parse(text, Loader=_Loader):
        kind = event.__class__
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
    return total


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
        nodes = _check_events(text)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - safe loader only
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
