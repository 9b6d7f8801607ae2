"""Errors a user can fix. The CLI prints their message as one line and exits with status 2;
anything else is a bug and keeps its traceback."""


def first_line(err: BaseException, limit: int = 200, typed: bool = False) -> str:
    """The first line of an exception's message (its type's name when it has none), at most
    `limit` characters: enough to say why a user's file failed, in a one-line error. With
    `typed`, behind the type's name ("OSError: ...")."""
    lines = str(err).strip().splitlines()
    if typed:
        return (f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__)[:limit]
    return (lines[0] if lines else type(err).__name__)[:limit]


class OvbenchError(Exception):
    """Base class: the message must name the file, video, frame or argument at fault."""


class DataError(OvbenchError):
    """The data set (or a prediction folder) on disk is missing something or is malformed."""


class ConfigError(OvbenchError):
    """A split, model name, model argument or option is wrong."""


class WeightsError(OvbenchError):
    """Model weights are missing or do not fit the model."""


class ModelError(OvbenchError):
    """The model failed or broke the adapter contract; the run stops (its finished videos are
    kept, so rerunning after the fix resumes) instead of skipping every video in turn."""


class UnwritableError(OvbenchError, OSError):
    """An output (a record, a table, a figure, a prediction) cannot be written: a read-only or
    full disk, an --out naming a file. One line for the user; still an OSError for code that
    carries on without a cache."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


def unwritable(path, err: OSError) -> UnwritableError:
    """The OSError of writing `path`, as one line naming it."""
    return UnwritableError(err.errno, err.strerror or str(err), str(path))
