"""The README's first screen: an app that builds its own client (story_app), mocked in five lines."""

from story_app import tell_story


def test_tell_story(sse_replay):
    sse_replay("cats", redirect=True)
    assert tell_story().startswith("In the quaint, sunlit cottage")
