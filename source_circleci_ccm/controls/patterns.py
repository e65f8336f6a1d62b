"""Every rule pattern runs on RE2, whose search time is linear in the text whatever the pattern.

Anyone who can push a commit shapes the configuration we read, and user `custom_rules` come from
whoever configures the connector: neither may be able to stall a sync with a backtracking regex.
RE2 has no look-around or back-references; a rule that needs "not followed by" says it with `unless`.
"""
from __future__ import annotations

import re2

Pattern = re2._Regexp  # what compile_pattern returns: .search(text) gives a match with .start()/.end()/.group()

_OPTIONS = re2.Options()
_OPTIONS.case_sensitive = False
_OPTIONS.log_errors = False  # a bad user pattern is reported as a ValueError, not logged by the C++ library


def compile_pattern(text: str) -> Pattern:
    """Case-insensitive, `^`/`$` at line ends (a `run` is one command per line once read as a shell reads it)."""
    try:
        return re2.compile("(?m)" + text, _OPTIONS)
    except re2.error as exc:
        message = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"{message.replace('(?m)', '', 1)} (patterns use RE2 syntax: no look-around or back-references)") from None
