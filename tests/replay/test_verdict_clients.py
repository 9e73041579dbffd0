"""The verdict on real clients: small httpx clients written the good way and the usual bad ways, and
google-genai itself, each against a scripted replay server. A client that honours Retry-After and backs
off passes; one that retries at once, retries a 400, or returns a truncated answer as complete fails with
a message that says exactly that."""

from __future__ import annotations

import json
import pathlib
import re
import time

import httpx
import pytest
from google import genai
from google.genai import errors, types

from sse_toolkit import EventParser
from sse_toolkit.replay import ReplayServer

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures"
WYOMING = FIXTURES / "wyoming.sse"
ANSWER = "The capital of Wyoming is **Cheyenne**.\n"
PATH = "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
REQUEST = {"contents": [{"role": "user", "parts": [{"text": "capital of Wyoming?"}]}]}
# One pooled client, as an application keeps: a fresh httpx.stream() per attempt spends tens of
# milliseconds building an SSL context, which would hide a retry "at once".
HTTP = httpx.Client(timeout=10)


class Failed(Exception):
    """One attempt failed: ``status`` (0 for a broken or unfinished stream), the response, partial text."""

    def __init__(self, status: int, response: httpx.Response | None = None, text: str = "") -> None:
        super().__init__(f"attempt failed: {status}")
        self.status, self.response, self.text = status, response, text


def attempt(base: str, check_finish: bool = True) -> str:
    """One streamed request; the answer's text, or Failed. ``check_finish=False`` is the naive reader that
    takes a clean end as the end of the answer."""
    text: list[str] = []
    try:
        with HTTP.stream(
            "POST", base + PATH, json=REQUEST, headers={"x-goog-api-key": "secret-key-123456"}
        ) as response:
            if response.status_code != 200:
                response.read()
                raise Failed(response.status_code, response)
            parser, finished = EventParser(), False
            for chunk in response.iter_bytes():
                for event in parser.feed(chunk):
                    candidate = json.loads(event.data)["candidates"][0]
                    text += [p.get("text", "") for p in candidate.get("content", {}).get("parts", [])]
                    finished = finished or "finishReason" in candidate
    except httpx.TransportError:
        raise Failed(0, None, "".join(text)) from None
    if check_finish and not finished:
        raise Failed(0, None, "".join(text))  # a clean end without finishReason, or a raw mid-stream error
    return "".join(text)


def retry_delay(response: httpx.Response) -> float:
    """The wait a 429 asks for: RetryInfo.retryDelay ("0.500s"), else the Retry-After header."""
    for detail in response.json()["error"].get("details", []):
        if detail.get("@type", "").endswith("RetryInfo"):
            return float(detail["retryDelay"].rstrip("s"))
    return float(response.headers.get("retry-after", "1"))


def careful_client(base: str, attempts: int = 4, backoff: float = 0.1) -> str:
    """Retries 429 after retryDelay, 5xx and broken or unfinished streams with exponential backoff;
    never retries other 4xx."""
    for number in range(attempts):
        try:
            return attempt(base)
        except Failed as failure:
            if number == attempts - 1 or (400 <= failure.status < 500 and failure.status != 429):
                raise
            assert failure.status != 429 or failure.response is not None
            time.sleep(retry_delay(failure.response) if failure.status == 429 else backoff * 2**number)
    raise AssertionError("unreachable")


def header_only_client(base: str) -> str:
    """Honours only the Retry-After header (whole seconds), as a generic HTTP client does."""
    for _ in range(3):
        try:
            return attempt(base)
        except Failed as failure:
            if failure.status != 429:
                raise
            assert failure.response is not None
            time.sleep(int(failure.response.headers["retry-after"]))
    raise AssertionError("gave up")


def hasty_client(base: str) -> str:
    """Retries every failure at once."""
    for _ in range(4):
        try:
            return attempt(base)
        except Failed:
            continue
    raise AssertionError("gave up")


def retry_everything_client(base: str) -> str:
    """Backs off nicely but retries anything, 400 included."""
    for number in range(4):
        try:
            return attempt(base)
        except Failed:
            time.sleep(0.06 * 2**number)
    raise AssertionError("gave up")


def naive_client(base: str) -> str:
    """One attempt; whatever text came before a clean end is the answer."""
    return attempt(base, check_finish=False)


def gluing_client(base: str) -> str:
    """Retries a broken stream but keeps the text it already had: the answer starts twice."""
    kept = ""
    for number in range(3):
        try:
            return kept + attempt(base)
        except Failed as failure:
            kept += failure.text
            time.sleep(0.06 * 2**number)
    raise AssertionError("gave up")


def test_careful_client_passes_rate_limits_and_server_errors(sse_replay) -> None:
    server = sse_replay(WYOMING, speed=0)
    server.script({"status": 429, "retry_after": 0.3}, {"status": 503}, {"status": 500}, "ok")
    assert careful_client(server.url) == ANSWER
    assert [e.status for e in server.requests] == [429, 503, 500, 200]
    assert server.verdict(strict=True, result_text=ANSWER) == []
    server.assert_resilient(strict=True, result_text=ANSWER)


def test_careful_client_passes_broken_and_truncated_streams(sse_replay) -> None:
    server = sse_replay(WYOMING, speed=0)
    server.script({"disconnect_after": 1}, {"truncate_after": 2}, {"error_after": 1, "status": 503}, "ok")
    text = careful_client(server.url)
    assert [e.end for e in server.requests] == ["reset", "truncated", "error", "complete"]
    server.assert_resilient(strict=True, result_text=text)


def test_client_honouring_only_the_whole_second_retry_after_header_passes(sse_replay) -> None:
    server = sse_replay(WYOMING, speed=0)
    server.script({"status": 429, "retry_after": 0.2}, "ok")  # Retry-After: 1 (rounded up)
    assert header_only_client(server.url) == ANSWER
    server.assert_resilient(strict=True, result_text=ANSWER)


def test_client_retrying_a_429_at_once_fails_with_retry_too_soon(sse_replay) -> None:
    server = sse_replay(WYOMING, speed=0)
    server.script({"status": 429, "retry_after": 0.4}, "ok")
    assert hasty_client(server.url) == ANSWER
    with pytest.raises(AssertionError) as caught:
        server.assert_resilient(result_text=ANSWER)
    message = str(caught.value)
    assert re.search(r"retry-too-soon: request #1 retried the 429 of request #0 after 0\.\d{3} s, ", message)
    assert 'the 429 asked for 0.4 s (retryDelay "0.400s", Retry-After: 1)' in message
    assert re.search(r": 0\.\d{3} s too soon", message)


def test_client_retrying_server_errors_at_once_fails_with_no_backoff(sse_replay) -> None:
    server = sse_replay(WYOMING, speed=0)
    server.script({"status": 503}, {"status": 503}, "ok")
    hasty_client(server.url)
    (finding,) = server.verdict()
    assert finding.code == "no-backoff" and finding.severity == "error"
    # Usually "request #1 retried 503 Service Unavailable of request #0 after 0.001 s: at once, without
    # backing off (2 such retries)"; on a loaded machine an attempt may take over AT_ONCE, and then the
    # waits still did not grow.
    assert re.search(
        r"retried 503 Service Unavailable of request #0 after 0\.0\d\d s: at once|did not grow",
        finding.message,
    ), finding.message


def test_client_waiting_the_same_time_between_5xx_retries_fails_with_no_backoff(sse_replay) -> None:
    server = sse_replay(WYOMING, speed=0)
    server.script({"status": 503}, {"status": 503}, {"status": 503}, "ok")
    assert careful_client(server.url, backoff=0.06) == ANSWER  # 0.06, 0.12, 0.24: passes
    server.assert_resilient()
    server.reset()
    server.script({"status": 503}, {"status": 503}, {"status": 503}, "ok")
    for _ in range(3):
        with pytest.raises(Failed):
            attempt(server.url)
        time.sleep(0.15)
    attempt(server.url)
    (finding,) = server.verdict()
    assert finding.code == "no-backoff"
    assert "the waits between retries of server errors did not grow" in finding.message


def test_client_retrying_a_400_fails_with_retried_non_retryable(sse_replay) -> None:
    server = sse_replay(WYOMING, speed=0)
    server.script({"status": 400}, "ok")
    retry_everything_client(server.url)
    with pytest.raises(AssertionError) as caught:
        server.assert_resilient()
    assert (
        "retried-non-retryable: request #1 retried request #0, which got 400 Bad Request: a client error "
        "fails the same way every time and must not be retried"
    ) in str(caught.value)


@pytest.mark.parametrize("status", [401, 403, 404])
def test_every_non_retryable_status_is_caught(sse_replay, status: int) -> None:
    server = sse_replay(WYOMING, speed=0)
    server.script({"status": status}, "ok")
    retry_everything_client(server.url)
    assert [f.code for f in server.verdict()] == ["retried-non-retryable"]


def test_client_returning_a_truncated_answer_as_complete_fails(sse_replay) -> None:
    server = sse_replay(WYOMING, speed=0)
    server.script({"truncate_after": 2})
    text = naive_client(server.url)
    assert text == "The capital of Wyoming"
    assert [f.code for f in server.verdict()] == [
        "truncated-not-retried"
    ]  # only a warning without result_text
    server.assert_resilient()
    with pytest.raises(AssertionError) as caught:
        server.assert_resilient(result_text=text)
    assert (
        "truncated-answer: the application returned 22 of the 40 characters of the answer as if it were "
        "complete: request #0 got a stream that ended cleanly after 2 events without a finishReason and was "
        "not retried"
    ) in str(caught.value)


def test_client_gluing_a_broken_attempt_to_its_retry_fails_with_wrong_answer(sse_replay) -> None:
    server = sse_replay(WYOMING, speed=0)
    server.script({"disconnect_after": 2}, "ok")
    text = gluing_client(server.url)
    assert text == "The capital of Wyoming" + ANSWER
    (finding,) = server.verdict(result_text=text)
    assert finding.code == "wrong-answer"
    assert "it holds the whole answer plus text from a failed attempt" in finding.message


def test_client_giving_up_after_one_server_error_is_a_warning_or_with_strict_an_error(sse_replay) -> None:
    server = sse_replay(WYOMING, speed=0)
    server.script({"status": 503}, "ok")
    with pytest.raises(Failed):
        attempt(server.url)
    (finding,) = server.verdict()
    assert (finding.code, finding.severity) == ("gave-up", "warning")
    assert finding.message == (
        "request #0 got 503 Service Unavailable and was never retried: the call gave up after one "
        "retryable failure"
    )
    server.assert_resilient()
    with pytest.raises(AssertionError, match="error   gave-up: request #0 got 503"):
        server.assert_resilient(strict=True)


def test_client_retrying_without_end_is_a_retry_storm(sse_replay) -> None:
    server = sse_replay(WYOMING, speed=0)
    server.script({"status": 503})
    for number in range(7):
        with pytest.raises(Failed):
            attempt(server.url)
        time.sleep(0.06 * 1.2**number)
    codes = [f.code for f in server.verdict()]
    assert codes == ["retry-storm"]
    assert (
        "7 attempts of one call (POST /v1beta/models/gemini-2.0-flash:streamGenerateContent, "
        "requests #0..#6): more than the bound of 5 attempts" in server.verdict()[0].message
    )
    assert server.verdict(max_attempts=7) == []


# -- google-genai itself -----------------------------------------------------------------------------------


def _genai(server: ReplayServer, **retry: object) -> genai.Client:
    options = types.HttpOptions(
        base_url=server.url,
        retry_options=types.HttpRetryOptions(http_status_codes=[429, 503], **retry),  # type: ignore[arg-type]
    )
    return genai.Client(api_key="test-key-123456", http_options=options)


def _genai_text(client: genai.Client, prompt: str = "hi") -> str:
    chunks = client.models.generate_content_stream(model="gemini-2.0-flash", contents=prompt)
    return "".join(c.text or "" for c in chunks)


def test_genai_retry_options_ignore_the_429_retry_delay(sse_replay) -> None:
    # google-genai 3.6.1 waits initial_delay * exp_base**n (+ jitter): retryDelay and Retry-After are ignored.
    server = sse_replay(WYOMING, speed=0)
    server.script({"status": 429, "retry_after": 0.5}, "ok")
    text = _genai_text(_genai(server, attempts=3, initial_delay=0.2, jitter=0))
    assert text == ANSWER
    (finding,) = server.verdict(result_text=text)
    assert finding.code == "retry-too-soon"
    gap = float(re.search(r"after (\d\.\d+) s", finding.message).group(1))  # type: ignore[union-attr]
    assert 0.19 < gap < 0.5


def test_genai_with_an_initial_delay_above_the_retry_delay_passes(sse_replay) -> None:
    server = sse_replay(WYOMING, speed=0)
    server.script({"status": 429, "retry_after": 0.3}, {"status": 503}, "ok")
    text = _genai_text(_genai(server, attempts=4, initial_delay=0.35, jitter=0))
    server.assert_resilient(strict=True, result_text=text)


def test_genai_accepts_a_truncated_stream_as_complete(sse_replay) -> None:
    server = sse_replay(WYOMING, speed=0)
    server.script({"truncate_after": 3})  # the third event holds finishReason: two events go out
    text = _genai_text(_genai(server, attempts=3, initial_delay=0.1, jitter=0))
    assert text == "The capital of Wyoming"
    with pytest.raises(
        AssertionError, match="truncated-answer: the application returned 22 of the 40 characters"
    ):
        server.assert_resilient(result_text=text)


def test_genai_does_not_retry_a_400_nor_a_broken_stream(sse_replay) -> None:
    server = sse_replay(WYOMING, speed=0)
    server.script({"status": 400}, {"disconnect_after": 1}, "ok")
    client = _genai(server, attempts=3, initial_delay=0.1, jitter=0)
    with pytest.raises(errors.ClientError):
        _genai_text(client)
    # Another question: an identical request after a failure would count as a retry of it.
    with pytest.raises(Exception) as broken:  # httpx2's ReadError/RemoteProtocolError, not a genai error
        _genai_text(client, "another question")
    assert not isinstance(broken.value, errors.APIError)
    findings = server.verdict()
    assert [(f.code, f.severity, f.requests) for f in findings] == [("gave-up", "warning", (1,))]
    assert "a stream broken after 1 event by an abrupt close" in findings[0].message


def test_genai_async_over_aiohttp_gets_the_same_verdict(sse_replay) -> None:
    import asyncio

    server = sse_replay(WYOMING, speed=0)
    server.script({"status": 429, "retry_after": 0.3}, "ok")
    client = _genai(server, attempts=3, initial_delay=0.1, jitter=0)

    async def ask() -> str:
        stream = await client.aio.models.generate_content_stream(model="gemini-2.0-flash", contents="hi")
        return "".join([chunk.text or "" async for chunk in stream])

    assert asyncio.run(ask()) == ANSWER
    assert [f.code for f in server.verdict(result_text=ANSWER)] == ["retry-too-soon"]
