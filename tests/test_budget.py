"""The speech benchmark's latency budget (`benchmarks/budget.py`): spans placed against
the end of speech, repeated names numbered, polls folded, medians across recordings."""

from benchmarks import budget

S = 1_000_000_000


def span(name, start_s, end_s):
    return {"name": name, "start_ns": int(start_s * S), "end_ns": int(end_s * S)}


def test_spans_are_placed_after_the_end_of_speech_and_repeats_numbered():
    placed = budget.placed([span("run", 11.0, 14.0), span("S3.GetObject", 11.5, 11.6),
                            span("S3.GetObject", 11.2, 11.3)], end_of_speech_ns=10 * S)
    assert placed == {"run": (1.0, 4.0), "S3.GetObject": (1.2, 1.3), "S3.GetObject #2": (1.5, 1.6)}


def test_a_poll_is_one_row_from_its_first_start_to_its_last_end():
    polls = [span("Redis.GET", 1 + i / 100, 1 + i / 100 + 0.001) for i in range(budget.REPEATED + 1)]
    placed = budget.placed(polls, end_of_speech_ns=0)
    assert list(placed) == ["Redis.GET (polled)"]
    assert placed["Redis.GET (polled)"][0] == 1.0 and placed["Redis.GET (polled)"][1] > 1.12


def test_rows_are_medians_in_order_of_start_and_rare_spans_left_out():
    recordings = [{"mood": (1.0, 2.0), "ingest": (0.1, 0.4)}, {"mood": (1.2, 2.4), "ingest": (0.2, 0.4)},
                  {"mood": (1.1, 2.1), "ingest": (0.1, 0.3), "retry": (3.0, 3.1)}]
    rows = budget.budget(recordings)
    assert [r["span"] for r in rows] == ["ingest", "mood"]
    assert rows[1] == {"span": "mood", "n": 3, "start_s": 1.1, "end_s": 2.1, "duration_s": 1.0}
