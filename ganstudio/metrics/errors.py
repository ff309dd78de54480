"""The metrics' error type, in a module of its own so that every metrics module can raise it without
importing another (``features`` loads ``inception`` lazily, and ``inception`` must not import back)."""

from __future__ import annotations


class FeatureError(ValueError):
    """An extractor cannot be built or used; the message says what to do (e.g. which file to download)."""
