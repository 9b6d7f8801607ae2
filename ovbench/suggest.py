"""Close-name suggestions, so that a typo gets a useful error instead of a bare "unknown"."""

import difflib
from typing import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean X, Y?)' for the closest choices, or '' when none is close."""
    close = difflib.get_close_matches(word, sorted(choices), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""
