"""Example: read a Gemini stream that curl saved, event by event and as one merged answer.

    API=https://generativelanguage.googleapis.com/v1beta
    curl -sN "$API/models/gemini-2.5-flash:streamGenerateContent?alt=sse" \
        -H "x-goog-api-key: $GEMINI_API_KEY" -d @request.json > saved.sse
    python examples/parse_saved_stream.py saved.sse

`curl -i` output (HTTP heads before the body) and the JSON-array stream (no ``alt=sse``) work the same.
Without an argument it reads the repository's fixtures/thinking.sse.
"""

from __future__ import annotations

import sys
from pathlib import Path

import sse_toolkit
from sse_toolkit.gemini import GeminiAPIError

DEFAULT = Path(__file__).resolve().parent.parent / "fixtures" / "thinking.sse"


def main(path: str) -> int:
    responses = []
    with open(path, "rb") as saved:
        try:
            # Each response is yielded as soon as its bytes are complete; a file is read in blocks.
            for number, response in enumerate(sse_toolkit.iter_responses(saved), 1):
                kind = "thought" if response.thoughts else "answer"
                print(f"event {number}: {kind}, {len(response.thoughts or response.text or '')} characters")
                responses.append(response)
        except GeminiAPIError as error:  # an error body, or an error the API wrote into the stream
            print(f"the stream ended with an API error: {error}", file=sys.stderr)
            return 1
    merged = sse_toolkit.merge_responses(responses)
    print()
    print(merged.text)
    if merged.usage_metadata is not None:  # not every stream reports usage
        print(f"finish reason {merged.finish_reason}, {merged.usage_metadata.total_token_count} tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else str(DEFAULT)))
