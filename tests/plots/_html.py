"""Checks on a report page: images decode and are not blank; nothing is loaded from outside."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from PIL import Image

_DATA_IMG = re.compile(r'<img[^>]*\bsrc="data:image/(png|svg\+xml);base64,([A-Za-z0-9+/=]+)"')
_ANY_IMG = re.compile(r"<img\b", re.I)
# Anything a browser would fetch: src/href/action/srcset pointing at a scheme or a protocol-
# relative URL, CSS url()/@import, <link>, <script src>, <iframe>, <object>, <embed>.
_EXTERNAL = [
    re.compile(
        r"""\b(src|href|action|srcset|poster|data)\s*=\s*["']?\s*(?!data:|#)[a-z][a-z0-9+.-]*:""",
        re.I,
    ),
    re.compile(r"""\b(src|href|action|srcset)\s*=\s*["']?\s*//""", re.I),
    re.compile(r"url\s*\(", re.I),
    re.compile(r"@import", re.I),
    re.compile(r"<(link|iframe|object|embed|base)\b", re.I),
    re.compile(r"<script\b", re.I),
]


def embedded_images(page: str) -> list[Image.Image]:
    """Decode every <img> of the page (all must be base64 PNG data URIs)."""
    found = _DATA_IMG.findall(page)
    assert len(found) == len(_ANY_IMG.findall(page)), "an <img> is not an embedded data URI"
    images = []
    for kind, data in found:
        assert kind == "png"
        img = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
        img.load()  # full decode: a truncated PNG raises here
        images.append(img)
    return images


def assert_not_blank(img: Image.Image) -> None:
    """A blank figure is one colour: the variance of the grey levels is exactly 0."""
    px = np.asarray(img.convert("L"), dtype=float)
    assert px.size > 0 and px.var() > 0


def external_references(page: str) -> list[str]:
    return [m.group(0) for rx in _EXTERNAL for m in rx.finditer(page)]
