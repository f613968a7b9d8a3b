"""Stop sequences in a streamed reply (the chat worker's StopText): nothing from the stop string on is sent, and
text that might begin one is held back only until it cannot."""

from __future__ import annotations

from backend.engine.chat_worker import StopText


def stream(stops: list[str], pieces: list[str]) -> str:
    sent: list[str] = []
    filt = StopText(stops, sent.append)
    for piece in pieces:
        filt.feed(piece)
    filt.flush()
    return "".join(sent)


def test_stop_split_across_pieces_is_cut_before_it():
    assert stream(["<END>"], ["Hello wor", "ld <E", "ND> more", " text"]) == "Hello world "
    assert stream(["\n\n", "User:"], ["one\n", "\ntwo"]) == "one"
    # pieces shorter than the stop string (the streamer often sends a few characters at a time)
    assert stream(["Quillworks"], ["You c", "an fi", "n", "d me ", "o", "n Qui", "llwor", "ks", " again"]) == "You can find me on "


def test_text_that_only_looks_like_a_stop_start_is_sent_in_the_end():
    assert stream(["<END>"], ["a <E", "nd b"]) == "a <End b"
    assert stream([], ["x", "y"]) == "xy"


def test_cut_of_the_whole_text():
    assert StopText(["Ada", "Bob"], None).cut("I am Bob, not Ada") == ("I am ", True)
    assert StopText(["Zed"], None).cut("no stop here") == ("no stop here", False)
