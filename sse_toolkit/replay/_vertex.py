"""Replay layer: Vertex AI request paths, parsed into the model and method the Gemini routes answer.

google-genai with ``vertexai=True`` (and ``base_url`` pointed at the replay server) sends, for any
``{version}`` such as ``v1`` or ``v1beta1``:

* ``/{version}/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}``
  (project and location from the client or ``GOOGLE_CLOUD_PROJECT`` / ``GOOGLE_CLOUD_LOCATION``; the
  credentials' bearer token in ``Authorization``);
* ``/{version}/publishers/google/models/{model}:{method}`` in express mode (an API key in
  ``x-goog-api-key``), and for ``models.get`` in both modes (no ``:{method}``).

``method`` is ``streamGenerateContent``, ``generateContent``, ``countTokens``... exactly as on the Gemini API
routes, so a parsed Vertex path is served by the same matching, faults, journal and verdict. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["VertexPath", "parse_vertex_path"]

# Path segments are anything but "/" (and ":" for the model, which the method follows). The version is the
# same shape the Gemini API routes accept (v1, v1beta, v1beta1, v1alpha ...).
_VERTEX = re.compile(
    r"^/(?P<version>v\d+(?:alpha|beta)?\d*)"
    r"(?:/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+))?"
    r"/publishers/(?P<publisher>[^/]+)/models/(?P<model>[^/:]+)"
    r"(?::(?P<method>[A-Za-z]+))?/?$"
)


@dataclass(frozen=True, slots=True)
class VertexPath:
    """One parsed Vertex AI model path. ``project`` and ``location`` are ``None`` in express mode;
    ``method`` is ``None`` for the model resource itself (``GET`` = ``models.get``)."""

    version: str
    publisher: str
    model: str
    method: str | None
    project: str | None = None
    location: str | None = None

    @property
    def express(self) -> bool:
        """True for ``/{version}/publishers/...`` (no project or location in the path)."""
        return self.project is None


def parse_vertex_path(path: str) -> VertexPath | None:
    """``path`` (without the query) as a :class:`VertexPath`, or ``None`` when it is no Vertex model path.

    >>> parse_vertex_path("/v1beta1/projects/p/locations/us-central1/publishers/google/models/"
    ...                   "gemini-2.0-flash:streamGenerateContent").method
    'streamGenerateContent'
    """
    m = _VERTEX.match(path)
    if m is None:
        return None
    return VertexPath(
        version=m["version"],
        publisher=m["publisher"],
        model=m["model"],
        method=m["method"],
        project=m["project"],
        location=m["location"],
    )
