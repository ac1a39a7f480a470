"""The one exception family for errors a user can cause.

Every message reads ``<what>, <where>, <what to do>``; the CLI prints it on one
line as ``psc-eval: error: <message>`` and exits with status 2.
"""

from __future__ import annotations


class PscError(Exception):
    """An error the user can fix: bad input, missing file, unknown name."""

    exit_code = 2

    def one_line(self) -> str:
        return " ".join(str(self).split())


class DataError(PscError):
    """A dataset, image, mask or list file is missing or malformed."""


class UnknownNameError(PscError):
    """A registry (colorizer, segmenter, dataset) does not know a name."""


class WeightsError(PscError):
    """A weights file is missing, corrupt, mismatched or of another model."""


class ConfigError(PscError):
    """A config file or option has unknown keys, wrong types or bad values."""


class ColorizerOutputError(PscError):
    """A colorizer returned NaN, inf or out-of-range chroma."""


class ResultFileError(PscError):
    """A run JSON is damaged or breaks its schema (types, ranges, finiteness)."""


class NotARunError(ResultFileError):
    """A JSON file that is not a psc-eval run at all (no ``schema_version``)."""
