"""``ReplyWriter`` steps that give several pieces (the loop asks for every piece already due once a write
is done): each piece is still its own chunk; a step of one piece reads nothing ahead; a step stops at its
limit, at ``STEP_BYTES`` and at a piece not yet due (read ahead, kept for its time); and whatever the limit,
the bytes given out and how the answer ends are the same, for a body that completes, breaks off or raises."""

from __future__ import annotations

import re
from collections.abc import Iterator

from hypothesis import given
from hypothesis import strategies as st

from sse_toolkit.server._http import STEP_BYTES, AbruptClose, Finish, Reply, ReplyWriter, chunk


class Counted:
    """A body that counts the pieces taken from it."""

    def __init__(self, pieces: Iterator[tuple[float | None, bytes]]) -> None:
        self.pieces = pieces
        self.taken = 0

    def __iter__(self) -> Iterator[tuple[float | None, bytes]]:
        for piece in self.pieces:
            self.taken += 1
            yield piece


def _writer(body: object) -> ReplyWriter:
    reply = Reply(200, [("Content-Type", "text/plain")], body)  # type: ignore[arg-type]
    return ReplyWriter(reply, 100.0, "GET", False, merge_head=True)


def test_a_step_gives_the_pieces_already_due_up_to_its_limit_each_its_own_chunk() -> None:
    writer = _writer([(0.0, b"a"), (0.0, b"bb"), (None, b"ccc"), (0.0, b"dddd")])
    first = writer.step(100.0, 3)
    assert first.pieces[0].endswith(b"\r\n\r\n" + chunk(b"a"))  # the head and the first piece: one write
    assert first.pieces[1:] == [chunk(b"bb"), chunk(b"ccc")]
    assert first.due == [100.0, 100.0] and first.end is None and first.wait is None
    rest = writer.step(100.0, 64)
    assert rest.pieces == [chunk(b"dddd"), b"0\r\n\r\n"] and rest.end is Finish.DONE


def test_a_step_of_one_piece_reads_nothing_ahead() -> None:
    body = Counted(iter([(0.0, b"a"), (0.0, b"b"), (0.0, b"c")]))
    writer = _writer(body)
    assert len(writer.step(100.0).pieces) == 1
    assert body.taken == 1  # the next is read once this one is written (the next step)
    assert writer.step(100.0).pieces == [chunk(b"b")] and body.taken == 2


def test_a_piece_not_yet_due_ends_the_step_read_ahead_and_kept_for_its_time() -> None:
    body = Counted(iter([(0.0, b"a"), (0.0, b"b"), (1.5, b"later"), (1.5, b"then")]))
    writer = _writer(body)
    step = writer.step(100.0, 64)
    assert len(step.pieces) == 2 and step.wait == 101.5 and step.end is None
    assert body.taken == 3
    assert writer.step(101.0, 64).pieces == []  # still not due
    step = writer.step(101.5, 64)
    assert step.pieces == [chunk(b"later"), chunk(b"then"), b"0\r\n\r\n"] and step.due == [101.5, 101.5]


def test_a_step_stops_reading_a_long_body_once_its_pieces_hold_step_bytes() -> None:
    def endless() -> Iterator[tuple[float | None, bytes]]:
        while True:
            yield 0.0, b"x" * 4096

    body = Counted(endless())
    writer = _writer(body)
    writer.step(100.0)  # the head and the first piece
    step = writer.step(100.0, 10**9)
    assert STEP_BYTES <= sum(len(piece) for piece in step.pieces) < STEP_BYTES + 4200
    assert body.taken == 1 + len(step.pieces)


def _without_date(data: bytes) -> bytes:
    return re.sub(rb"Date: [^\r]*\r\n", b"", data)


@given(
    st.lists(st.tuples(st.sampled_from([None, 0.0]), st.binary(max_size=12)), max_size=8),
    st.sampled_from(["complete", "raises", "reset", "close"]),
    st.integers(2, 9),
)
def test_the_bytes_and_the_end_do_not_depend_on_how_many_pieces_a_step_may_give(
    pieces: list[tuple[float | None, bytes]], ending: str, limit: int
) -> None:
    def body() -> Iterator[tuple[float | None, bytes]]:
        yield from pieces
        if ending == "raises":
            raise ValueError("the body broke")
        if ending in ("reset", "close"):
            raise AbruptClose(reset=ending == "reset")

    def run(limit: int) -> tuple[bytes, Finish, type[BaseException] | None]:
        writer, given_out = _writer(body()), []
        for _ in range(100):
            step = writer.step(100.0, limit)
            given_out += step.pieces
            if step.end is not None:
                return (
                    _without_date(b"".join(given_out)),
                    step.end,
                    type(writer.error) if writer.error else None,
                )
        raise AssertionError("no end")

    assert run(limit) == run(1)


def _body_bytes(
    reply_chunks: list[tuple[float | None, bytes]] | list[tuple[float | None, bytearray]],
) -> bytes:
    writer = _writer(reply_chunks)
    step = writer.step(100.0, 64)
    assert step.end is Finish.DONE
    return b"".join(step.pieces).split(b"\r\n\r\n", 1)[1]


def test_pieces_sent_again_and_again_are_framed_the_same_each_time() -> None:
    pieces: list[tuple[float | None, bytes]] = [(0.0, b"data: %d\n\n" % i * (i + 1)) for i in range(40)]
    expected = b"".join(chunk(data) for _, data in pieces) + b"0\r\n\r\n"
    for _ in range(3):  # a replay server hands the same bytes objects to every request
        assert _body_bytes(pieces) == expected


def test_a_bytearray_piece_changed_between_replies_goes_out_as_it_is_now() -> None:
    piece = bytearray(b"first")
    assert _body_bytes([(0.0, piece)]) == chunk(b"first") + b"0\r\n\r\n"
    piece[:] = b"second!"
    assert _body_bytes([(0.0, piece)]) == chunk(b"second!") + b"0\r\n\r\n"


def test_the_framing_kept_for_reuse_stays_within_its_bound_however_many_pieces_go_out() -> None:
    from sse_toolkit.server import _http

    for i in range(3000):  # ~6 MiB of distinct pieces, over the bound
        assert _body_bytes([(0.0, b"%05d" % i + b"x" * 2000)]).startswith(b"7d5\r\n%05d" % i)
    assert _http._framed.size <= _http._framed.limit == 4 * 1024 * 1024
    entries = _http._framed.entries
    kept = sum(len(data) + len(framed) + _http._OBJECT_COST for data, framed, _ in entries.values())  # type: ignore[arg-type]
    assert kept == _http._framed.size
    assert all(key == id(data) for key, (data, _, _) in entries.items())


class Told:
    """A BodyWatcher that notes what it is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, bool | None]] = []

    def given(self, size: int) -> None:
        self.calls.append(("given", size, None))

    def over(self, size: int, whole: bool) -> None:
        self.calls.append(("over", size, whole))


def _steps(reply: Reply, now: float, limit: int) -> tuple[bytes, Finish, list[float]]:
    writer, given_out, dues = ReplyWriter(reply, 100.0, "GET", False, merge_head=True), [], []
    for _ in range(200):
        step = writer.step(now, limit)
        given_out += step.pieces
        dues += step.due
        if step.end is not None:
            writer.close()
            return _without_date(b"".join(given_out)), step.end, dues
        now = max(now, step.wait or now)
    raise AssertionError("no end")


@given(
    st.lists(st.tuples(st.sampled_from([None, 0.0, 0.5, 2.0]), st.binary(max_size=12)), max_size=10),
    st.sampled_from(["complete", "reset", "timeout"]),
    st.sampled_from([100.0, 101.0, 103.0]),
    st.integers(1, 12),
)
def test_a_body_given_as_a_tuple_goes_out_as_the_same_body_given_as_a_list(
    pieces: list[tuple[float | None, bytes]], ending: str, now: float, limit: int
) -> None:
    from sse_toolkit.parser._end import End

    end = {"complete": End.COMPLETE, "reset": End.RESET, "timeout": End.TIMEOUT}[ending]
    listed = _steps(Reply(200, [("Content-Type", "text/plain")], list(pieces), end=end), now, limit)
    frozen = tuple(pieces)
    for _ in range(2):  # the second time from the framing kept for that tuple
        assert _steps(Reply(200, [("Content-Type", "text/plain")], frozen, end=end), now, limit) == listed


def test_a_tuple_body_all_due_goes_in_one_piece_with_the_final_chunk_when_the_step_may_give_every_piece() -> (
    None
):
    body = tuple((0.0, b"data: %d\r\n\r\n" % i) for i in range(12))
    writer = ReplyWriter(Reply(200, [], body), 100.0, "GET", False, merge_head=True)
    step = writer.step(100.0, 64)
    assert len(step.pieces) == 1 and step.end is Finish.DONE and step.due == [100.0] * 12
    framed = b"".join(chunk(data) for _, data in body)
    assert step.pieces[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert step.pieces[0].endswith(b"\r\n\r\n" + framed + b"0\r\n\r\n")  # head, body, final chunk
    later = ReplyWriter(Reply(200, [], body), 100.0, "GET", False, merge_head=True)
    assert len(later.step(100.0, 1).pieces) == 1 and later.step(100.0, 1).end is None  # one piece a step


def test_a_tuple_body_holding_a_bytearray_goes_out_as_the_bytearray_is_now() -> None:
    piece = bytearray(b"first")
    body = ((0.0, b"a"), (0.0, piece))
    assert _steps(Reply(200, [], body), 100.0, 64)[0].endswith(chunk(b"first") + b"0\r\n\r\n")  # type: ignore[arg-type]
    piece[:] = b"second!"
    assert _steps(Reply(200, [], body), 100.0, 64)[0].endswith(chunk(b"second!") + b"0\r\n\r\n")  # type: ignore[arg-type]


def test_the_watcher_is_told_each_step_and_that_the_body_is_whole_in_the_step_that_ends_it() -> None:
    told = Told()
    reply = Reply(200, [], [(0.0, b"aa"), (1.0, b"bbb"), (2.0, b"c")], watcher=told)
    writer = ReplyWriter(reply, 100.0, "GET", False, merge_head=True)
    writer.step(100.0, 64)
    writer.step(101.0, 64)
    assert told.calls == [("given", 2, None), ("given", 5, None)]
    last = writer.step(102.0, 64)
    assert last.end is Finish.DONE and told.calls[-1] == (
        "over",
        6,
        True,
    )  # before the last bytes are written
    writer.close()
    assert told.calls[-1] == ("over", 6, True) and len(told.calls) == 3 and reply.watcher is None  # once


def test_the_watcher_hears_of_a_body_cut_off_when_the_writer_is_closed() -> None:
    told = Told()
    reply = Reply(200, [], iter([(0.0, b"aa"), (5.0, b"never")]), watcher=told)
    writer = ReplyWriter(reply, 100.0, "GET", False, merge_head=True)
    writer.step(100.0, 64)
    writer.close()  # the client left
    assert told.calls == [("given", 2, None), ("over", 2, False)]
    told_whole = Told()
    whole = ReplyWriter(
        Reply(200, [], ((0.0, b"xyz"),), watcher=told_whole), 100.0, "GET", False, merge_head=True
    )
    whole.step(100.0, 64)
    assert told_whole.calls == [("over", 3, True)]


def test_the_whole_bodies_kept_stay_within_their_bound() -> None:
    from sse_toolkit.server import _http

    for i in range(3000):  # ~6 MiB of distinct tuple bodies
        body = ((0.0, b"%05d" % i + b"y" * 2000),)
        assert _steps(Reply(200, [], body), 100.0, 64)[0].endswith(chunk(body[0][1]) + b"0\r\n\r\n")
    assert _http._wholes.size <= _http._wholes.limit == 4 * 1024 * 1024
    assert all(key == id(body) for key, (body, _, _) in _http._wholes.entries.items())


def test_a_tuple_body_with_a_piece_not_yet_due_waits_for_it_as_a_list_would() -> None:
    body = ((0.0, b"now"), (0.5, b"later"))
    for _ in range(2):
        writer = ReplyWriter(Reply(200, [], body), 100.0, "GET", False, merge_head=True)
        first = writer.step(100.0, 64)
        assert b"later" not in b"".join(first.pieces) and first.wait == 100.5 and first.end is None
        second = writer.step(100.5, 64)
        assert second.pieces == [chunk(b"later"), b"0\r\n\r\n"] and second.end is Finish.DONE


def test_a_piece_given_counts_for_the_watcher_only_once_the_next_is_asked_for() -> None:
    told = Told()  # a client that leaves before the last piece given is written was not sent it
    reply = Reply(200, [], [(0.0, b"a"), (1.0, b"bb"), (2.0, b"ccc")], watcher=told)
    writer = ReplyWriter(reply, 100.0, "GET", False, merge_head=True)
    writer.step(100.0, 64)  # gives "a", reads "bb" ahead: "a" counts
    writer.step(101.0, 1)  # gives "bb" and stops at its limit: "ccc" not asked for yet
    writer.close()
    assert told.calls == [("given", 1, None), ("given", 1, None), ("over", 1, False)]


def test_a_none_piece_due_later_is_a_pause_and_a_malformed_tuple_item_ends_the_stream_as_from_a_list() -> (
    None
):
    paused = [(0.0, b"a"), (1.0, None), (1.0, b"b")]
    assert _steps(Reply(200, [], tuple(paused)), 100.0, 64)[0].endswith(
        chunk(b"a") + chunk(b"b") + b"0\r\n\r\n"
    )  # type: ignore[arg-type]
    broken = ((0.0, b"a"), (0.0, b"b"), "not a pair")
    for body in (broken, list(broken)):
        out, end, _ = _steps(Reply(200, [], body), 100.0, 64)  # type: ignore[arg-type]
        assert (
            out.startswith(b"HTTP/1.1 200 OK")
            and out.endswith(chunk(b"a") + chunk(b"b"))
            and end is Finish.CLOSE
        )
