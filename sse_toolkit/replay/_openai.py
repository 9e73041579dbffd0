"""Replay layer: Gemini's OpenAI-compatible endpoint (``{base}/v1beta/openai/``) made from Gemini fixtures.

Pure functions, no I/O: the replay app calls them with the ``GenerateContentResponse`` dicts of a fixture and
the client's request, and sends what they return.

Wire shape (what Gemini's compatibility layer sends; public captures of it show these traits):
  * every object is compact JSON with its keys in alphabetical order and raw UTF-8:
    ``{"choices":[{"delta":{"content":"Hi","role":"assistant"},"index":0}],"created":...,"id":...,
    "model":"gemini-2.0-flash","object":"chat.completion.chunk"}``;
  * one ``chat.completion.chunk`` per Gemini chunk; every delta carries ``role: "assistant"``;
    ``finish_reason`` is left out until the chunk that finishes the choice, and ``usage`` (when the request
    asks with ``stream_options.include_usage``) rides on that same last chunk; then ``data: [DONE]``;
  * ``id`` is the Gemini ``responseId``; ``model`` is the model the request named;
  * an error before the stream is a JSON list, ``[{"error": {"code", "message", "status"}}]``
    (tests/data/openai-error-429); inside a started stream see :func:`encode_chat_error_event`;
  * ``GET models`` lists ``{"id": "models/<name>", "object": "model", "created": 0, "owned_by": "google"}``.
Not captured, so chosen and stated here: events end with ``\\n\\n``; a function call without an ``id`` gets
``call_<n>``; ``thought`` parts are left out (the compatibility layer returns the answer, not the thoughts).

``finish_reason``: ``STOP`` -> ``stop`` (``tool_calls`` when the choice made function calls),
``MAX_TOKENS`` -> ``length``, the safety family (``SAFETY``, ``RECITATION``, ``BLOCKLIST``,
``PROHIBITED_CONTENT``, ``SPII``, ``LANGUAGE``, ``OTHER``, the ``IMAGE_*`` ones) -> ``content_filter``, and
anything else (``MALFORMED_FUNCTION_CALL`` ...) -> ``stop``; the same table as litellm's Gemini mapping.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

import orjson

from ..parser._exceptions import SSEUsageError

__all__ = [
    "DONE_EVENT",
    "OPENAI_PREFIX",
    "ChatFinishReason",
    "ChatRequest",
    "ChatRequestError",
    "OpenAIPath",
    "OpenAIRoute",
    "bare_model",
    "chat_chunks",
    "chat_completion",
    "chat_error",
    "chat_error_from_gemini",
    "chat_usage",
    "chunks_from_completion",
    "completion_from_chunks",
    "encode_chat_error_event",
    "encode_chat_event",
    "encode_chat_stream",
    "finish_reason",
    "gemini_request",
    "model_object",
    "models_list",
    "parse_chat_request",
    "parse_openai_path",
    "request_key",
]

DONE_EVENT = b"data: [DONE]\n\n"


class ChatRequestError(SSEUsageError):
    """A chat completion request the replay server cannot read; the message names the field and why."""


class ChatFinishReason(StrEnum):
    """The ``finish_reason`` values the compatibility layer sends."""

    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"


_FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "LANGUAGE",
        "OTHER",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "IMAGE_OTHER",
        "NO_IMAGE",
    }
)


def finish_reason(gemini_reason: str | None, made_tool_calls: bool = False) -> ChatFinishReason | None:
    """The OpenAI ``finish_reason`` for a Gemini ``finishReason`` (``None`` while the choice goes on)."""
    if gemini_reason is None:
        return None
    if gemini_reason == "MAX_TOKENS":
        return ChatFinishReason.LENGTH
    if gemini_reason in _FILTERED:
        return ChatFinishReason.CONTENT_FILTER
    return ChatFinishReason.TOOL_CALLS if made_tool_calls else ChatFinishReason.STOP


# ---------------------------------------------------------------------------------------------------------
# Paths


class OpenAIRoute(Enum):
    """What a path under ``/{version}/openai/`` asks for."""

    CHAT_COMPLETIONS = "chat/completions"
    MODELS = "models"  # the listing
    MODEL = "model"  # one model: models/{id}
    EMBEDDINGS = "embeddings"


@dataclass(frozen=True, slots=True)
class OpenAIPath:
    """A parsed compatibility path; ``model`` only for ``OpenAIRoute.MODEL`` (without ``models/``)."""

    version: str
    route: OpenAIRoute
    model: str | None = None


# What comes before chat/completions, models ...: /{version}/openai on the Gemini API; Vertex AI's own
# compatibility endpoint has the same tail after /{version}/projects/{p}/locations/{l}/endpoints/openapi.
OPENAI_PREFIX = (
    r"/(?P<version>v\d+(?:alpha|beta)?\d*)(?:/openai|/projects/[^/]+/locations/[^/]+/endpoints/openapi)"
)
_OPENAI = re.compile(
    f"^{OPENAI_PREFIX}" r"/(?P<rest>chat/completions|embeddings|models(?:/(?P<model>.+?))?)/?$"
)


def parse_openai_path(path: str) -> OpenAIPath | None:
    """``path`` (without the query) as an :class:`OpenAIPath`, or ``None`` for any other path."""
    m = _OPENAI.match(path)
    if m is None:
        return None
    rest = m["rest"]
    if rest == "chat/completions":
        return OpenAIPath(m["version"], OpenAIRoute.CHAT_COMPLETIONS)
    if rest == "embeddings":
        return OpenAIPath(m["version"], OpenAIRoute.EMBEDDINGS)
    if m["model"]:
        return OpenAIPath(m["version"], OpenAIRoute.MODEL, bare_model(m["model"]))
    return OpenAIPath(m["version"], OpenAIRoute.MODELS)


def bare_model(name: str) -> str:
    """A model name without its prefix: clients send ``gemini-2.0-flash``, ``models/gemini-2.0-flash`` or
    (Vertex AI) ``google/gemini-2.0-flash``."""
    return name.removeprefix("models/").removeprefix("google/")


# ---------------------------------------------------------------------------------------------------------
# Requests


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A chat completion request as the replay app needs it: the model (without ``models/``), whether to
    stream, whether the client asked for ``usage`` in the stream, and the same request in Gemini's shape."""

    model: str
    stream: bool
    include_usage: bool
    gemini: dict[str, Any] = field(repr=False)


def parse_chat_request(body: bytes | str | dict[str, Any]) -> ChatRequest:
    """Read a ``POST chat/completions`` body. Raises :class:`ChatRequestError` naming the field at fault."""
    if isinstance(body, (bytes, str)):
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ChatRequestError(f"chat request: the body is not JSON ({exc})") from None
    else:
        value = body
    if not isinstance(value, dict):
        raise ChatRequestError(f"chat request: expected a JSON object, got {type(value).__name__}")
    model = value.get("model")
    if not isinstance(model, str) or not model:
        raise ChatRequestError(f"chat request: 'model' must be a non-empty string, got {model!r}")
    stream = value.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise ChatRequestError(f"chat request: 'stream' must be true or false, got {stream!r}")
    options = value.get("stream_options") or {}
    if not isinstance(options, dict):
        raise ChatRequestError(f"chat request: 'stream_options' must be an object, got {options!r}")
    return ChatRequest(
        model=bare_model(model),
        stream=stream,
        include_usage=bool(options.get("include_usage")),
        gemini=gemini_request(value),
    )


def gemini_request(chat: dict[str, Any]) -> dict[str, Any]:
    """The Gemini ``generateContent`` body for an OpenAI chat request: ``contents`` (``user``/``model``
    turns; tool results as ``functionResponse`` parts), ``systemInstruction`` from ``system`` and
    ``developer`` messages, ``generationConfig``, ``tools`` and ``toolConfig``."""
    messages = chat.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ChatRequestError(f"chat request: 'messages' must be a non-empty list, got {messages!r:.80}")
    contents: list[dict[str, Any]] = []
    system: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for number, message in enumerate(messages):
        where = f"messages[{number}]"
        if not isinstance(message, dict):
            raise ChatRequestError(f"chat request: {where} must be an object, got {type(message).__name__}")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_parts(message.get("content"), where))
        elif role == "user":
            contents.append({"role": "user", "parts": _parts(message.get("content"), where)})
        elif role == "assistant":
            parts = _parts(message.get("content"), where) if message.get("content") is not None else []
            for index, call in enumerate(message.get("tool_calls") or ()):
                parts.append(_function_call(call, f"{where}.tool_calls[{index}]", call_names))
            contents.append({"role": "model", "parts": parts})
        elif role == "tool":
            call_id = message.get("tool_call_id")
            name = call_names.get(call_id) if isinstance(call_id, str) else None
            response = _tool_result(message.get("content"))
            contents.append(
                {
                    "role": "user",
                    "parts": [{"functionResponse": {"name": name or call_id, "response": response}}],
                }
            )
        else:
            raise ChatRequestError(
                f"chat request: {where}.role must be system, developer, user, assistant or tool, got {role!r}"
            )
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    config = _generation_config(chat)
    if config:
        body["generationConfig"] = config
    tools = [_declaration(t, f"tools[{i}]") for i, t in enumerate(chat.get("tools") or ())]
    if tools:
        body["tools"] = [{"functionDeclarations": tools}]
    tool_config = _tool_config(chat.get("tool_choice"))
    if tool_config:
        body["toolConfig"] = tool_config
    return body


def _parts(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise ChatRequestError(
            f"chat request: {where}.content must be a string or a list of parts, got {type(content).__name__}"
        )
    parts: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"text": part.get("text", "")})
        elif kind == "image_url":
            url = (part.get("image_url") or {}).get("url", "")
            parts.append(_media(url))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            parts.append(
                {
                    "inlineData": {
                        "mimeType": f"audio/{audio.get('format', 'wav')}",
                        "data": audio.get("data", ""),
                    }
                }
            )
        else:
            raise ChatRequestError(f"chat request: {where}.content[{index}] has an unknown type {kind!r}")
    return parts


def _media(url: str) -> dict[str, Any]:
    m = re.match(r"^data:(?P<mime>[^;,]+);base64,(?P<data>.*)$", url, re.DOTALL)
    if m is not None:
        return {"inlineData": {"mimeType": m["mime"], "data": m["data"]}}
    return {"fileData": {"fileUri": url}}


def _function_call(call: Any, where: str, names: dict[str, str]) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise ChatRequestError(f"chat request: {where} needs a function with a name")
    arguments = function.get("arguments") or "{}"
    try:
        args = orjson.loads(arguments) if isinstance(arguments, str) else arguments
    except orjson.JSONDecodeError:
        raise ChatRequestError(
            f"chat request: {where}.function.arguments is not JSON: {arguments!r:.60}"
        ) from None
    if isinstance(call.get("id"), str):
        names[call["id"]] = function["name"]
    return {"functionCall": {"name": function["name"], "args": args}}


def _tool_result(content: Any) -> dict[str, Any]:
    # Gemini wants an object; a tool's JSON-object answer is passed as is, anything else under "content".
    if isinstance(content, str):
        try:
            value = orjson.loads(content)
        except orjson.JSONDecodeError:
            return {"content": content}
        return value if isinstance(value, dict) else {"content": value}
    return {"content": content}


_CONFIG = {
    "temperature": "temperature",
    "top_p": "topP",
    "max_tokens": "maxOutputTokens",
    "max_completion_tokens": "maxOutputTokens",
    "n": "candidateCount",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}


def _generation_config(chat: dict[str, Any]) -> dict[str, Any]:
    config = {gemini: chat[openai] for openai, gemini in _CONFIG.items() if chat.get(openai) is not None}
    stop = chat.get("stop")
    if stop is not None:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    fmt = chat.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if schema is not None:
            config["responseJsonSchema"] = schema
    return config


def _declaration(tool: Any, where: str) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise ChatRequestError(
            f"chat request: {where} must be {{'type': 'function', 'function': {{'name': ...}}}}"
        )
    return {k: function[k] for k in ("name", "description", "parameters") if k in function}


def _tool_config(choice: Any) -> dict[str, Any] | None:
    modes = {"none": "NONE", "auto": "AUTO", "required": "ANY"}
    if isinstance(choice, str) and choice in modes:
        return {"functionCallingConfig": {"mode": modes[choice]}}
    if isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        return {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
        }
    return None


def request_key(gemini_body: dict[str, Any], *, system: bool = True) -> bytes:
    """What two requests must share to ask the same thing: the system instruction and the turns, each turn's
    role defaulting to ``user`` as the API does. Canonical JSON, so equal keys mean equal conversations.

    A recorded ``{"contents": [{"parts": [{"text": "Hi"}]}]}`` and the chat request
    ``{"messages": [{"role": "user", "content": "Hi"}]}`` (via :func:`gemini_request`) have the same key;
    generation settings (temperature ...) are not part of it. ``system=False`` leaves the system instruction
    out too (frameworks such as agents add their own)."""
    turns = []
    for content in gemini_body.get("contents") or ():
        if isinstance(content, dict):
            turns.append({"role": content.get("role") or "user", "parts": content.get("parts") or []})
    key: dict[str, Any] = {"contents": turns}
    if system:
        instruction = gemini_body.get("systemInstruction") or gemini_body.get("system_instruction") or {}
        key["system"] = instruction.get("parts") or [] if isinstance(instruction, dict) else []
    return orjson.dumps(key, option=orjson.OPT_SORT_KEYS)


# ---------------------------------------------------------------------------------------------------------
# Responses


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def encode_chat_event(obj: Any) -> bytes:
    """One SSE event of the compatibility stream: ``data: <compact JSON, sorted keys>\\n\\n``."""
    return b"data: " + _dumps(obj) + b"\n\n"


def encode_chat_stream(chunks: Iterable[dict[str, Any]]) -> list[bytes]:
    """The whole stream body, one piece per chunk, ending with ``data: [DONE]``."""
    return [*(encode_chat_event(chunk) for chunk in chunks), DONE_EVENT]


def chat_usage(usage_metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """OpenAI ``usage`` from Gemini ``usageMetadata``: ``prompt_tokens`` = ``promptTokenCount``,
    ``completion_tokens`` = ``candidatesTokenCount`` + ``thoughtsTokenCount`` (thinking is billed as output),
    ``total_tokens`` = ``totalTokenCount`` (else the sum); ``reasoning_tokens`` in
    ``completion_tokens_details`` when the model thought."""
    if not usage_metadata:
        return None
    prompt = int(usage_metadata.get("promptTokenCount") or 0)
    thoughts = int(usage_metadata.get("thoughtsTokenCount") or 0)
    completion = int(usage_metadata.get("candidatesTokenCount") or 0) + thoughts
    usage: dict[str, Any] = {
        "completion_tokens": completion,
        "prompt_tokens": prompt,
        "total_tokens": int(usage_metadata.get("totalTokenCount") or prompt + completion),
    }
    if thoughts:
        usage["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return usage


def _check_responses(responses: Sequence[Any]) -> None:
    for number, response in enumerate(responses):
        if not isinstance(response, dict):
            raise SSEUsageError(
                f"response {number}: expected a GenerateContentResponse dict, got {type(response).__name__}"
            )


def _candidates(response: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any], str, list[dict[str, Any]]]]:
    """Each candidate of a Gemini response: its choice index, the candidate, its text and its calls."""
    for position, candidate in enumerate(response.get("candidates") or []):
        if isinstance(candidate, dict):
            text, calls = _split((candidate.get("content") or {}).get("parts") or ())
            yield int(candidate.get("index", position)), candidate, text, calls


def _blocked(response: dict[str, Any]) -> bool:
    """A blocked prompt: no candidate, a ``blockReason``."""
    return not response.get("candidates") and bool((response.get("promptFeedback") or {}).get("blockReason"))


def _split(parts: Iterable[Any]) -> tuple[str, list[dict[str, Any]]]:
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts:
        if not isinstance(part, dict) or part.get("thought"):
            continue
        if isinstance(part.get("text"), str):
            text.append(part["text"])
        if isinstance(part.get("functionCall"), dict):
            calls.append(part["functionCall"])
    return "".join(text), calls


def _tool_call(call: dict[str, Any], number: int) -> dict[str, Any]:
    return {
        "function": {"arguments": _dumps(call.get("args") or {}).decode(), "name": call.get("name", "")},
        "id": call.get("id") or f"call_{number}",
        "type": "function",
    }


def _response_id(responses: Sequence[dict[str, Any]], fallback: str) -> str:
    for response in responses:
        if isinstance(response.get("responseId"), str):
            return str(response["responseId"])
    return fallback


def chat_chunks(
    responses: Sequence[dict[str, Any]],
    *,
    model: str,
    created: int = 0,
    include_usage: bool = False,
    completion_id: str = "chatcmpl-sse-replay",
) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects for a Gemini stream (one per Gemini chunk, in order).

    ``model`` is what the request named; ``created`` the request time (the app passes it: no clock here);
    ``completion_id`` is used only when no chunk has a ``responseId``. With ``include_usage`` the last chunk
    carries ``usage`` from the last ``usageMetadata``."""
    _check_responses(responses)
    ident = _response_id(responses, completion_id)
    calls_so_far: dict[int, int] = {}
    chunks: list[dict[str, Any]] = []
    usage: dict[str, Any] | None = None
    for response in responses:
        usage = response.get("usageMetadata") or usage
        choices = []
        for index, candidate, text, calls in _candidates(response):
            delta: dict[str, Any] = {"role": "assistant"}
            if text:
                delta["content"] = text
            if calls:
                first = calls_so_far.get(index, 0)
                delta["tool_calls"] = [
                    {**_tool_call(call, first + n), "index": first + n} for n, call in enumerate(calls)
                ]
                calls_so_far[index] = first + len(calls)
            choice: dict[str, Any] = {"delta": delta, "index": index}
            reason = finish_reason(candidate.get("finishReason"), calls_so_far.get(index, 0) > 0)
            if reason is not None:
                choice["finish_reason"] = reason.value
            choices.append(choice)
        if _blocked(response):
            # A blocked prompt has no candidate: the choice ends at once, filtered.
            choices.append(
                {
                    "delta": {"role": "assistant"},
                    "finish_reason": ChatFinishReason.CONTENT_FILTER.value,
                    "index": 0,
                }
            )
        chunks.append(
            {
                "choices": choices,
                "created": created,
                "id": ident,
                "model": model,
                "object": "chat.completion.chunk",
            }
        )
    if include_usage and chunks:
        converted = chat_usage(usage)
        if converted is not None:
            chunks[-1]["usage"] = converted
    return chunks


def chat_completion(
    responses: Sequence[dict[str, Any]],
    *,
    model: str,
    created: int = 0,
    completion_id: str = "chatcmpl-sse-replay",
) -> dict[str, Any]:
    """The unary ``chat.completion`` for a Gemini stream: per choice the whole text (``content`` is ``None``
    when the answer is only tool calls), the tool calls, the finish reason; ``usage`` from the last
    ``usageMetadata``."""
    _check_responses(responses)
    texts: dict[int, list[str]] = {}
    calls: dict[int, list[dict[str, Any]]] = {}
    reasons: dict[int, str | None] = {}
    usage: dict[str, Any] | None = None
    for response in responses:
        usage = response.get("usageMetadata") or usage
        for index, candidate, text, found in _candidates(response):
            texts.setdefault(index, []).append(text)
            calls.setdefault(index, []).extend(found)
            if candidate.get("finishReason"):
                reasons[index] = candidate["finishReason"]
            else:
                reasons.setdefault(index, None)
        if _blocked(response):
            texts.setdefault(0, [])
            reasons[0] = "SAFETY"
    choices = []
    for index in sorted(texts):
        text = "".join(texts[index])
        message: dict[str, Any] = {
            "content": text if text or not calls.get(index) else None,
            "role": "assistant",
        }
        if calls.get(index):
            message["tool_calls"] = [_tool_call(call, n) for n, call in enumerate(calls[index])]
        reason = finish_reason(reasons.get(index) or "STOP", bool(calls.get(index)))
        choices.append(
            {"finish_reason": reason.value if reason else None, "index": index, "message": message}
        )
    body: dict[str, Any] = {
        "choices": choices,
        "created": created,
        "id": _response_id(responses, completion_id),
        "model": model,
        "object": "chat.completion",
    }
    converted = chat_usage(usage)
    if converted is not None:
        body["usage"] = converted
    return body


def completion_from_chunks(chunks: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The unary ``chat.completion`` that a recorded ``chat.completion.chunk`` stream stands for (a fixture
    recorded from the compatibility endpoint with ``stream: true``, asked for without streaming): per
    choice the text and tool calls joined, the last finish reason; ``usage``, ``id``, ``model`` and
    ``created`` as the chunks carry them."""
    texts: dict[int, list[str]] = {}
    calls: dict[int, dict[int, dict[str, Any]]] = {}
    reasons: dict[int, str | None] = {}
    head: dict[str, Any] = {}
    usage: dict[str, Any] | None = None
    for chunk in chunks:
        for name in ("created", "id", "model"):
            if chunk.get(name) is not None:
                head[name] = chunk[name]
        usage = chunk.get("usage") or usage
        for item in chunk.get("choices") or ():
            index = int(item.get("index", 0))
            delta = item.get("delta") or {}
            texts.setdefault(index, [])
            if isinstance(delta.get("content"), str):
                texts[index].append(delta["content"])
            for call in delta.get("tool_calls") or ():
                merged = calls.setdefault(index, {}).setdefault(
                    int(call.get("index", len(calls.get(index, {})))),
                    {"function": {"arguments": "", "name": ""}, "id": "", "type": "function"},
                )
                merged["id"] = call.get("id") or merged["id"]
                function = call.get("function") or {}
                merged["function"]["name"] = function.get("name") or merged["function"]["name"]
                merged["function"]["arguments"] += function.get("arguments") or ""
            if item.get("finish_reason"):
                reasons[index] = item["finish_reason"]
    choices = []
    for index in sorted(texts):
        made = [calls[index][n] for n in sorted(calls.get(index, {}))]
        text = "".join(texts[index])
        message: dict[str, Any] = {"content": text if text or not made else None, "role": "assistant"}
        if made:
            message["tool_calls"] = made
        choices.append({"finish_reason": reasons.get(index), "index": index, "message": message})
    body: dict[str, Any] = {"choices": choices, **head, "object": "chat.completion"}
    if usage is not None:
        body["usage"] = usage
    return body


def chunks_from_completion(
    completion: dict[str, Any], *, include_usage: bool = False
) -> list[dict[str, Any]]:
    """The stream a recorded unary ``chat.completion`` stands for (asked for with ``stream: true``): one
    chunk whose delta per choice is the whole message and its finish reason; ``usage`` on it when asked."""
    choices = []
    for item in completion.get("choices") or ():
        message = item.get("message") or {}
        delta: dict[str, Any] = {"role": "assistant"}
        if message.get("content") is not None:
            delta["content"] = message["content"]
        if message.get("tool_calls"):
            delta["tool_calls"] = [{**call, "index": n} for n, call in enumerate(message["tool_calls"])]
        choice: dict[str, Any] = {"delta": delta, "index": item.get("index", 0)}
        if item.get("finish_reason"):
            choice["finish_reason"] = item["finish_reason"]
        choices.append(choice)
    chunk: dict[str, Any] = {
        **{name: completion[name] for name in ("created", "id", "model") if name in completion},
        "choices": choices,
        "object": "chat.completion.chunk",
    }
    if include_usage and completion.get("usage") is not None:
        chunk["usage"] = completion["usage"]
    return [chunk]


def model_object(name: str) -> dict[str, Any]:
    """One entry of ``GET models`` (and the answer to ``GET models/{id}``), ``id`` with ``models/``."""
    return {"created": 0, "id": f"models/{bare_model(name)}", "object": "model", "owned_by": "google"}


def models_list(names: Iterable[str]) -> dict[str, Any]:
    """The ``GET models`` body for ``names`` (in the order given)."""
    return {"data": [model_object(name) for name in names], "object": "list"}


def chat_error(code: int, status: str, message: str) -> list[dict[str, Any]]:
    """The compatibility layer's error body: a one-element list ``[{"error": {code, message, status}}]``.
    Serve it with ``code`` as the HTTP status (``orjson.dumps`` it, or ``json.dumps(indent=2)`` as the
    stored sample is printed). Inside a stream that has started, send :func:`encode_chat_error_event`."""
    return [{"error": {"code": code, "message": message, "status": status}}]


def encode_chat_error_event(error: list[dict[str, Any]] | dict[str, Any]) -> bytes:
    """An error inside a started stream, as one event: ``data: {"error": {...}}\\n\\n`` (no ``[DONE]``
    follows). No capture shows how the compatibility layer fails mid-stream, so the object form is chosen:
    the openai SDK raises ``APIError`` for it, while it turns the list form into a bogus chunk silently."""
    body = error[0] if isinstance(error, list) and error else error
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        raise SSEUsageError(f"expected chat_error(...) or {{'error': {{...}}}}, got {str(error)[:80]}")
    return encode_chat_event(body)


def chat_error_from_gemini(body: bytes | dict[str, Any]) -> list[dict[str, Any]]:
    """A Gemini error body (``{"error": {code, message, status, details}}``, e.g. a fixture's recorded
    429 or mid-stream 503) in the compatibility layer's form (``details`` are not carried over)."""
    value: Any = body
    if isinstance(body, (bytes, bytearray)):
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise SSEUsageError(f"a Gemini error body must be JSON, got {bytes(body[:60])!r}") from None
    error = value.get("error") if isinstance(value, dict) else None
    if not isinstance(error, dict):
        raise SSEUsageError(f"a Gemini error body must be {{'error': {{...}}}}, got {str(value)[:80]}")
    return chat_error(
        int(error.get("code") or 500), str(error.get("status") or "UNKNOWN"), str(error.get("message") or "")
    )
