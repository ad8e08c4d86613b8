"""Daily table rows and schema, report aggregates, batch file formats: pure code."""

import json

import pytest

from vomage_dagster.domain import batch, prompts, report, tables

RECORD = {
    "recording_id": "rec-1", "user_id": "u1", "recorded_at": "2026-11-29T08:30:00+00:00",
    "published_at": "2026-11-29T08:30:07.123+00:00", "duration_s": 6.2, "language": "en-US",
    "transcript": "I'm so happy today", "transcript_confidence": 0.91,
    "mood": {"primary_emotion": "joy", "confidence": 0.9, "intensity": 0.8, "valence": 0.7,
             "arousal": 0.6, "keywords": ["happy"], "summary": "s", "image_prompt": "p"},
    "context": {"local_time": "2026-11-29T17:30:00+09:00", "time_of_day": "evening", "season": "autumn",
                "day_type": "weekend", "place": "35.7,139.7",
                "weather": {"condition": "rain", "temperature_c": 12.0, "source": "derived-offline"}},
    "seconds": {"raw_recording": 0.5, "transcript": 2.5, "recording_context": 0.01, "mood": 0.2,
                "mood_image": 0.4, "published_record": 0.05},
    "cache_hits": {"transcript": False, "recording_context": False, "mood": False, "mood_image": True},
    "models": {"analysis": "us.anthropic.claude-haiku-4-5-20251001-v1:0",
               "image": "stability.stable-image-core-v1:1", "prompt_version": "mood-v1"},
    "usage": {"input_tokens": 500, "output_tokens": 100},
}


def test_row_and_cost():
    row = tables.to_row(RECORD)
    assert row["local_hour"] == 17 and row["weather"] == "rain" and row["cache_hits"] == 1
    assert row["seconds_total"] == pytest.approx(3.66)
    # Transcribe (15 s minimum) + Haiku 4.5 tokens; the image came from the cache: saved.
    assert row["cost_transcript_usd"] == pytest.approx(0.024 * 15 / 60)
    assert row["cost_mood_usd"] == pytest.approx((500 * 1.0 + 100 * 5.0) / 1e6)
    assert row["cost_image_usd"] == 0 and row["saved_usd"] == pytest.approx(0.04)
    assert row["cost_usd"] == pytest.approx(0.024 * 15 / 60 + (500 * 1.0 + 100 * 5.0) / 1e6)


def test_a_record_carries_its_own_cost_and_cache_hits_cost_nothing():
    from vomage_dagster.domain import costs

    paid = costs.recording_cost(42.0, "us.amazon.nova-micro-v1:0", {"input_tokens": 1000, "output_tokens": 200},
                                "stability.stable-image-core-v1:1", {})
    assert paid["stages"] == {"transcript": round(0.024 * 42 / 60, 6),
                              "mood": round((1000 * 0.035 + 200 * 0.14) / 1e6, 6), "mood_image": 0.04}
    assert paid["saved"] == 0 and paid["total"] == pytest.approx(sum(paid["stages"].values()), abs=1e-6)
    hit = costs.recording_cost(42.0, "us.amazon.nova-micro-v1:0", {"input_tokens": 1000, "output_tokens": 200},
                               "stability.stable-image-core-v1:1",
                               {"transcript": True, "mood": True, "mood_image": True})
    assert hit["total"] == 0 and hit["saved"] == pytest.approx(paid["total"], abs=1e-6)
    assert tables.to_row({**RECORD, "cost_usd": paid})["cost_usd"] == paid["total"]
    # A short clip pays Transcribe's 15 s minimum.
    assert costs.transcribe_cost(3.0) == costs.transcribe_cost(15.0)


def test_parquet_round_trip_has_exactly_the_schema():
    data = tables.to_parquet([RECORD, {**RECORD, "recording_id": "rec-2"}])
    assert tables.check_schema(data) == []
    assert tables.read_parquet(data).num_rows == 2


def test_schema_drift_is_reported():
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.table({"recording_id": ["r"], "valence": ["high"]}), out)
    problems = tables.check_schema(out.getvalue())
    assert "valence: string != double" in problems and any(p.startswith("missing") for p in problems)


def test_report_aggregates_and_chart():
    frame = tables.read_parquet(tables.to_parquet([
        RECORD, {**RECORD, "recording_id": "r2", "mood": {**RECORD["mood"], "primary_emotion": "sadness",
                                                          "valence": -0.5}}])).to_pandas()
    agg = report.aggregates(frame)
    assert agg["records"] == 2 and agg["by_emotion"]["joy"]["records"] == 1
    assert agg["by_language"] == {"en-US": 2} and agg["by_hour"] == {17: 2}
    assert report.chart(agg, "t").startswith(b"\x89PNG")
    one = tables.to_row(RECORD)["cost_usd"]
    cost = agg["cost"]
    assert cost["total_usd"] == pytest.approx(2 * one) and cost["per_recording_p50_usd"] == pytest.approx(one)
    assert cost["share"]["mood_image"] == 0 and cost["share"]["transcript"] > 0.5
    assert sum(cost["share"].values()) == pytest.approx(1, abs=1e-3) and cost["saved_usd"] == pytest.approx(0.08)


@pytest.mark.parametrize(("n", "expected"), [
    (99, []), (100, [(0, 100)]), (120_000, [(0, 40_000), (40_000, 80_000), (80_000, 120_000)]),
    (50_050, [(0, 25_025), (25_025, 50_050)]),
])
def test_days_are_split_to_the_batch_quotas(n, expected):
    chunks = batch.split(n)
    assert chunks == expected
    assert all(batch.MIN_RECORDS_PER_JOB <= e - s <= batch.MAX_RECORDS_PER_JOB for s, e in chunks)


def test_batch_files_round_trip_with_errors():
    haiku = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    lines = batch.input_lines([("r1", "I'm happy", "en-US"), ("r2", "sad", "en-US")], haiku).decode().splitlines()
    first = json.loads(lines[0])
    assert first["recordId"] == "r1" and first["modelInput"]["tool_choice"]["name"] == prompts.TOOL_NAME
    tool = {"type": "tool_use", "name": prompts.TOOL_NAME, "input": {
        "primary_emotion": "joy", "confidence": 0.9, "intensity": 0.5, "valence": 0.6, "arousal": 0.5,
        "keywords": ["happy"], "summary": "ok"}}
    out = "\n".join([
        json.dumps({"recordId": "r1", "modelInput": {}, "modelOutput": {"content": [tool]}}),
        json.dumps({"recordId": "r2", "modelInput": {}, "error": {"errorCode": 400, "errorMessage": "bad"}}),
        json.dumps({"recordId": "r3", "modelInput": {}, "modelOutput": {"content": [
            {**tool, "input": {**tool["input"], "primary_emotion": "bliss"}}]}}),
    ]).encode()
    results = {r.record_id: r for r in batch.parse_output(out, haiku)}
    assert results["r1"].mood["primary_emotion"] == "joy" and results["r1"].error is None
    assert results["r2"].error == "400: bad"
    assert "invalid_analysis" in results["r3"].error


def test_a_stage_without_a_time_is_null_not_zero():
    seconds = {k: v for k, v in RECORD["seconds"].items() if k != "published_record"}
    row = tables.to_row({**RECORD, "seconds": seconds})
    assert row["seconds_published_record"] is None and row["seconds_transcript"] == 2.5
    assert tables.check_schema(tables.to_parquet([{**RECORD, "seconds": seconds}])) == []
