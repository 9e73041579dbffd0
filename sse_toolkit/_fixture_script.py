"""Fixture layer: scripted Gemini streams, built in Python instead of recorded, in the real API's framing.

A test often needs "the model says X, then calls tool Y" and nothing more. ``GeminiScript`` writes that
stream the way ``streamGenerateContent?alt=sse`` does (shapes from shared/gemini-captures, gemini-2.5):

- every event carries ``candidates``, ``usageMetadata``, ``modelVersion`` and ``responseId``, in that order;
  a candidate is ``{"content": {"parts": [...], "role": "model"}, "finishReason"?, "index": 0}``;
- text comes as word-sized deltas (one event each), a thought summary as one ``"thought": true`` event,
  a function call as one event (``id`` and ``thoughtSignature`` only when given, as gemini-3 sends them);
- ``usageMetadata`` counts grow from event to event and reach the totals given to ``usage()`` on the last:
  ``promptTokenCount`` always, ``candidatesTokenCount`` once answer events start, ``thoughtsTokenCount``
  when there were thoughts, ``totalTokenCount`` the sum;
- ``finishReason`` sits on the last event only (``STOP`` unless ``finish()`` says otherwise);
- each event is framed ``data: <json>\\r\\n\\r\\n`` by ``_gemini_wire.encode_sse_event`` (the API's byte style).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from typing import Any

import orjson

from ._fixture_io import _SSE_HEADERS, save_fixture
from ._fixture_model import Chunk, Exchange, Fixture, RecordedRequest
from ._fixture_pace import DEFAULT_PACE
from ._gemini_wire import dumps_api_style, encode_sse_event, error_body

__all__ = ["GeminiScript"]

_WORD = re.compile(r"\s*\S+")


def _words(text: str, per_event: int | None) -> list[str]:
    """Word-sized deltas that join back to ``text``: each word with the space before it ("Hello", " world")."""
    if per_event is None:
        return [text]
    words = _WORD.findall(text)
    if not words:
        return [text]  # "" or only whitespace: one delta, as the API sends empty text parts
    words[-1] += text[sum(map(len, words)) :]  # trailing whitespace ("\n") stays with the last word
    return ["".join(words[i : i + per_event]) for i in range(0, len(words), per_event)]


class GeminiScript:
    """Build a Gemini stream step by step; every method returns the script, so calls chain.

    ``GeminiScript(model="gemini-2.5-flash").thought("…").text("Hello world").usage(prompt=7).finish("STOP")``

    - ``model``: written as ``modelVersion`` and into the request path (``/v1beta/models/MODEL:...``).
    - ``prompt``: if given, the recorded request body is ``{"contents": [{"parts": [{"text": prompt}],
      "role": "user"}]}`` (the replay server may match on it); the prompt token default counts its words.
    - ``response_id``: defaults to a stable id derived from the content, so a saved fixture does not change
      between runs.
    """

    def __init__(
        self, model: str = "gemini-2.5-flash", *, prompt: str | None = None, response_id: str | None = None
    ) -> None:
        self.model = model
        self.prompt = prompt
        self.response_id = response_id
        self._steps: list[tuple[str, dict[str, Any]]] = []  # (kind, part); kind "thought" or "answer"
        self._usage: dict[str, int | None] = {"prompt": None, "candidates": None, "thoughts": None}
        self._finish: str | None = "STOP"
        self._error: bytes | None = None

    # -- steps ---------------------------------------------------------------------------------------

    def text(self, text: str, *, words: int | None = 1) -> GeminiScript:
        """Answer text, one event per ``words`` words (default 1); ``words=None`` sends it as one event."""
        if words is not None and words < 1:
            raise ValueError(f"words must be >= 1 or None, got {words!r}")
        for delta in _words(text, words):
            self._steps.append(("answer", {"text": delta}))
        return self

    def thought(self, text: str) -> GeminiScript:
        """A thought summary (``includeThoughts``): one event with a ``"thought": true`` part, as the API sends."""
        self._steps.append(("thought", {"text": text, "thought": True}))
        return self

    def function_call(
        self, name: str, args: dict[str, Any] | None = None, *, id: str | None = None, signature: str | None = None
    ) -> GeminiScript:
        """A ``functionCall`` part in its own event; ``id`` and ``signature`` (thoughtSignature) if given."""
        call: dict[str, Any] = {"name": name, "args": dict(args or {})}
        if id is not None:
            call["id"] = id
        part: dict[str, Any] = {"functionCall": call}
        if signature is not None:
            part["thoughtSignature"] = signature
        self._steps.append(("answer", part))
        return self

    def usage(
        self, prompt: int | None = None, candidates: int | None = None, thoughts: int | None = None
    ) -> GeminiScript:
        """Final token counts (the last event's). Unset ones are estimated: a word is a token, a function
        call is 10 (its name and arguments), the prompt is 1 unless ``prompt=`` text was given."""
        for key, value in (("prompt", prompt), ("candidates", candidates), ("thoughts", thoughts)):
            if value is not None:
                if type(value) is not int or value < 0:
                    raise ValueError(f"{key} token count must be an int >= 0, got {value!r}")
                self._usage[key] = value
        return self

    def finish(self, reason: str | None = "STOP") -> GeminiScript:
        """The last event's ``finishReason`` (``STOP``, ``MAX_TOKENS``, ``SAFETY``...); None: leave it out,
        as a stream cut short would."""
        self._finish = reason
        return self

    def error(
        self,
        code: int = 503,
        status: str = "UNAVAILABLE",
        message: str = "The model is overloaded. Please try again later.",
        details: list[Any] | None = None,
    ) -> GeminiScript:
        """End the stream with an error sent after the events, as the API does once a stream has started:
        the pretty JSON error body, raw (no ``data:``), inside the 200 response (error-midstream-503.sse).
        Clients raise it (google-genai: ``ServerError`` for 5xx) after the events before it."""
        self._error = error_body(code, status, message, details)
        return self

    # -- output --------------------------------------------------------------------------------------

    def responses(self) -> list[dict[str, Any]]:
        """The stream as ``GenerateContentResponse`` dicts, one per event, keys in the API's order."""
        thought_steps = sum(1 for kind, _ in self._steps if kind == "thought")
        answer_steps = len(self._steps) - thought_steps
        prompt, candidates, thoughts = self._totals()
        steps: list[tuple[str, dict[str, Any] | None]] = list(self._steps)
        if not steps and self._finish is not None:
            steps = [("answer", None)]  # finish alone: a candidate with no content (e.g. SAFETY)
        responses = []
        seen_thoughts = seen_answers = 0
        for number, (kind, part) in enumerate(steps, 1):
            if kind == "thought":
                seen_thoughts += 1
            elif part is not None:
                seen_answers += 1
            candidate: dict[str, Any] = {}
            if part is not None:
                candidate["content"] = {"parts": [part], "role": "model"}
            if number == len(steps) and self._finish is not None:
                candidate["finishReason"] = self._finish
            candidate["index"] = 0
            # Thoughts come first and are counted as they stream; with no thought events the count (thinking
            # without includeThoughts) is there from the first event, as in text-long-utf8.sse.
            thought_count = _share(thoughts, seen_thoughts, thought_steps) if thought_steps else thoughts
            answer_count = _share(candidates, seen_answers, answer_steps)
            if number == len(steps):
                thought_count, answer_count = thoughts, candidates
            responses.append(
                {
                    "candidates": [candidate],
                    "usageMetadata": _usage(prompt, answer_count, thought_count),
                    "modelVersion": self.model,
                    "responseId": "",
                }
            )
        response_id = self.response_id if self.response_id is not None else _stable_id(self.model, responses)
        for response in responses:
            response["responseId"] = response_id
        return responses

    def events(self) -> list[bytes]:
        """The body in pieces as the API sends it: each response framed ``data: <json>\\r\\n\\r\\n``, then
        the raw error body if ``error()`` was called."""
        pieces = [encode_sse_event(response) for response in self.responses()]
        if self._error is not None:
            pieces.append(self._error)
        return pieces

    def to_exchange(self, pace: float | None = DEFAULT_PACE) -> Exchange:
        """One exchange: the request, ``200 OK`` with the API's SSE headers, one chunk per event, the k-th
        event ``k * pace`` seconds after the request (``pace=None``: untimed, replayed at the default)."""
        if pace is not None and not pace >= 0:
            raise ValueError(f"pace must be >= 0 seconds or None, got {pace!r}")
        chunks = [
            Chunk(data, None if pace is None else round(number * pace, 6))
            for number, data in enumerate(self.events(), 1)
        ]
        return Exchange(
            request=self._request(),
            status=200,
            reason="OK",
            headers=list(_SSE_HEADERS),
            chunks=chunks,
            head_t=None if pace is None else 0.0,
        )

    def to_fixture(self, pace: float | None = DEFAULT_PACE) -> Fixture:
        """A one-exchange fixture, ready for ``save_fixture`` or the replay server."""
        return Fixture(
            exchanges=[self.to_exchange(pace)], source=f"scripted with sse_toolkit.GeminiScript ({self.model})"
        )

    def save(self, path: str | os.PathLike[str], pace: float | None = DEFAULT_PACE) -> None:
        """Save as a recorded-format fixture (atomic write)."""
        save_fixture(path, self.to_fixture(pace))

    def __repr__(self) -> str:
        return f"GeminiScript(model={self.model!r}, steps={len(self._steps)}, finish={self._finish!r})"

    # -- helpers -------------------------------------------------------------------------------------

    def _totals(self) -> tuple[int, int, int]:
        def estimate(kind: str) -> int:
            total = 0
            for step_kind, part in self._steps:
                if step_kind == kind:
                    total += len(_WORD.findall(part["text"])) if "text" in part else 10
            return total

        prompt = self._usage["prompt"]
        if prompt is None:
            prompt = max(1, len(_WORD.findall(self.prompt))) if self.prompt else 1
        candidates = self._usage["candidates"]
        thoughts = self._usage["thoughts"]
        return (
            prompt,
            estimate("answer") if candidates is None else candidates,
            estimate("thought") if thoughts is None else thoughts,
        )

    def _request(self) -> RecordedRequest:
        body = b""
        if self.prompt is not None:
            body = orjson.dumps({"contents": [{"parts": [{"text": self.prompt}], "role": "user"}]})
        return RecordedRequest(
            method="POST",
            path=f"/v1beta/models/{self.model}:streamGenerateContent",
            query="alt=sse",
            headers=[("Content-Type", "application/json")],
            body=body,
        )


def _share(total: int, seen: int, steps: int) -> int:
    """The running count after ``seen`` of ``steps`` events: grows evenly, reaches ``total`` at the end."""
    return (total * seen) // steps if steps else 0


def _usage(prompt: int, candidates: int, thoughts: int) -> dict[str, Any]:
    usage: dict[str, Any] = {"promptTokenCount": prompt}
    if candidates:
        usage["candidatesTokenCount"] = candidates
    usage["totalTokenCount"] = prompt + candidates + thoughts
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def _stable_id(model: str, responses: list[dict[str, Any]]) -> str:
    # Real ids are 23 characters of URL-safe base64 ("0J-HaJetAqv0jrEPwu-tsQ0"); derive one from the content.
    digest = hashlib.sha256(model.encode() + dumps_api_style(responses)).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")[:23]
