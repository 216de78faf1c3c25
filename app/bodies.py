"""Request bodies: JSON parsed with a nesting limit, and errors that say what is wrong with the body.

Left alone, werkzeug turns every unreadable body into 400 "Bad request syntax or unsupported method",
lets JSON nested ~1,000 deep raise RecursionError (a 500), and reads a chunked body (no Content-Length)
only up to the size limit, so an oversized one looks truncated (400 instead of 413). ``ApiRequest`` (the
app's ``request_class``) and ``LimitedJSONProvider`` (its ``json``) answer each case with its own problem.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
from flask import Request
from flask.json.provider import DefaultJSONProvider

from app.problems import Problem

EXAMPLE_BODY = '{"sentence": "The cat sat .", "model": "minilm", "task": "pos-wsj"}'

# A JSON string (escapes included), unrolled so that long strings do not backtrack.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


class BodyError(ValueError):
    """A request body that cannot be parsed: the HTTP ``status``, a ``detail`` that says what to fix, a ``slug``."""

    def __init__(self, status: int, detail: str, slug: str) -> None:
        super().__init__(detail)
        self.status, self.detail, self.slug = status, detail, slug


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON ``text`` (brackets inside strings do not count)."""
    code = np.frombuffer(_STRING.sub("", text).encode("utf-8", "surrogatepass"), dtype=np.uint8)
    steps = ((code == ord("[")) | (code == ord("{"))).astype(np.int32) - ((code == ord("]")) | (code == ord("}")))
    return int(np.cumsum(steps).max(initial=0))


class LimitedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, but ``loads`` takes UTF-8 only, refuses nesting deeper than ``max_depth``
    before parsing (so the recursive decoder never meets it), and raises :class:`BodyError` with a
    position for malformed input."""

    max_depth: int = 32

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if isinstance(s, (bytes, bytearray)):
            try:
                s = bytes(s).decode("utf-8")
            except UnicodeDecodeError as err:
                raise BodyError(400, f"the body is not valid UTF-8 (byte 0x{err.object[err.start]:02x} at position "
                                     f"{err.start}); send JSON encoded as UTF-8", "bad-encoding") from None
        if not s.strip():
            raise BodyError(400, f"empty body: send a JSON object, e.g. {EXAMPLE_BODY}", "empty-body")
        depth = nesting_depth(s)
        if depth > self.max_depth:
            raise BodyError(422, f"JSON nested deeper than {self.max_depth} levels ({depth}); a request body needs "
                                 "at most 2", "too-deep")
        try:
            return json.loads(s, **kwargs)
        except json.JSONDecodeError as err:
            raise BodyError(400, f"invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}",
                            "invalid-json") from None
        except (ValueError, RecursionError) as err:  # e.g. an integer of more than 4,300 digits
            what = "a number has too many digits" if "digits" in str(err) else "it cannot be decoded"
            raise BodyError(400, f"invalid JSON: {what}", "invalid-json") from None


class ApiRequest(Request):
    """Flask's request, with a problem for each way a JSON body can be unreadable."""

    _size_checked = False

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if isinstance(e, BodyError):
            raise Problem(e.status, e.detail, e.slug)
        return super().on_json_loading_failed(e)

    def get_data(self, cache: bool = True, as_text: bool = False,  # type: ignore[override]
                 parse_form_data: bool = False) -> bytes | str:
        """The body; 413 for a streamed (chunked) body over ``max_content_length``, which werkzeug cuts off
        silently at the limit."""
        data = super().get_data(cache=cache, as_text=False, parse_form_data=parse_form_data)
        limit = self.max_content_length
        if (not self._size_checked and limit is not None and self.content_length is None
                and "wsgi.input_terminated" in self.environ and len(data) >= limit):
            self._size_checked = True
            if self.environ["wsgi.input"].read(1):
                raise Problem(413, f"the request body is over the limit of {limit} bytes; send less", "too-large")
        return data.decode(errors="replace") if as_text else data
