"""A small SVG writer: enough for bar charts, with correct escaping and no dependency.

Elements are built as nested ``Element`` objects and serialised once; attribute values
and text are XML-escaped, numbers are written with at most two decimals so files stay
small and diffs stable.
"""

from __future__ import annotations

import math
from typing import Optional, Union
from xml.sax.saxutils import escape, quoteattr

__all__ = ["Element", "Svg"]

Number = Union[int, float]
Value = Union[str, Number]


def _fmt(value: Value) -> str:
    if isinstance(value, bool):
        raise TypeError("SVG attribute values must be str or numbers, not bool")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"SVG coordinates must be finite, got {value!r}")
        text = f"{value:.2f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    return value


class Element:
    """One SVG element: a tag, attributes, children and optional text."""

    def __init__(self, tag: str, text: Optional[str] = None, /, **attrs: Value) -> None:
        self.tag = tag
        self.text = text
        # Python names can't hold '-': stroke_width -> stroke-width; class_ -> class.
        self.attrs = {k.rstrip("_").replace("_", "-"): _fmt(v) for k, v in attrs.items()}
        self.children: list[Element] = []

    def add(self, child: Element) -> Element:
        self.children.append(child)
        return child

    def group(self, **attrs: Value) -> Element:
        return self.add(Element("g", **attrs))

    def rect(self, x: Number, y: Number, width: Number, height: Number, **attrs: Value) -> Element:
        return self.add(Element("rect", x=x, y=y, width=width, height=height, **attrs))

    def line(self, x1: Number, y1: Number, x2: Number, y2: Number, **attrs: Value) -> Element:
        return self.add(Element("line", x1=x1, y1=y1, x2=x2, y2=y2, **attrs))

    def text_at(self, x: Number, y: Number, text: str, **attrs: Value) -> Element:
        return self.add(Element("text", text, x=x, y=y, **attrs))

    def write(self, out: list[str], indent: int = 0) -> None:
        pad = "  " * indent
        attrs = "".join(f" {k}={quoteattr(v)}" for k, v in self.attrs.items())
        if not self.children and self.text is None:
            out.append(f"{pad}<{self.tag}{attrs}/>")
            return
        if not self.children:
            out.append(f"{pad}<{self.tag}{attrs}>{escape(self.text or '')}</{self.tag}>")
            return
        out.append(f"{pad}<{self.tag}{attrs}>")
        if self.text is not None:
            out.append(f"{pad}  {escape(self.text)}")
        for child in self.children:
            child.write(out, indent + 1)
        out.append(f"{pad}</{self.tag}>")


class Svg(Element):
    """The root ``<svg>`` element of a ``width`` x ``height`` picture."""

    def __init__(self, width: Number, height: Number, **attrs: Value) -> None:
        super().__init__(
            "svg",
            xmlns="http://www.w3.org/2000/svg",
            width=width,
            height=height,
            viewBox=f"0 0 {_fmt(width)} {_fmt(height)}",
            **attrs,
        )

    def to_string(self) -> str:
        out = ['<?xml version="1.0" encoding="UTF-8"?>']
        self.write(out)
        return "\n".join(out) + "\n"
