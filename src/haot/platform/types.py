"""Input types more than one context takes, defined once."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

# A link a browser can open (images by URL): http(s), no whitespace, a sane length.
WebUrl = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^https?://\S{1,2000}$")]
