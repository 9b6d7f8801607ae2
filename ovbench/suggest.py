"""Close-name suggestions, so that a typo gets a useful error instead of a bare "unknown"."""

import difflib
from typing import Iterable

from ovbench.errors import ConfigError


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean X, Y?)' for the closest choices, or '' when none is close."""
    close = difflib.get_close_matches(word, sorted(choices), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def refuse_unknown_keys(given: Iterable[str], known: Iterable[str], where: str) -> None:
    """ConfigError naming the first key of a user's JSON object that is not a known one: a typo
    would otherwise silently change nothing."""
    known = list(known)
    for key in given:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r}{did_you_mean(key, known)}; known: {', '.join(known)}")
