"""A stand-in for an application under test: it builds its own google-genai client, as most apps do, so a
test cannot hand it a base URL (see test_readme_first_screen)."""

from __future__ import annotations

from google import genai


def tell_story() -> str:
    client = genai.Client()  # reads its key and base URL from the environment
    answer = client.models.generate_content(
        model="gemini-2.0-flash", contents="Write a cute story about cats."
    )
    return answer.text or ""
