"""Decoding and validation of recordings: real containers made with PyAV, no Dagster."""

import numpy as np
import pytest

from vomage_dagster.domain import audio
from vomage_dagster.domain.errors import NO_SPEECH, TOO_LONG, TOO_SHORT, UNDECODABLE, ProcessingError
from vomage_dagster.testing.audio_files import FORMATS, encode, silence, tone


@pytest.mark.parametrize("ext", sorted(FORMATS))
def test_every_phone_format_decodes_to_16k_mono(ext):
    data = encode(tone(2.0, rate=22_050), 22_050, ext)
    decoded = audio.decode_and_validate(data)
    assert decoded.samples.dtype == np.float32
    assert decoded.duration_s == pytest.approx(2.0, abs=0.1)
    assert len(decoded.sha256) == 64


def test_sample_files_decode(samples):
    for item in samples.values():
        decoded = audio.decode_and_validate(item["path"].read_bytes())
        assert 1.0 < decoded.duration_s < 15.0


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", UNDECODABLE),
        (b"this is a text file, not audio" * 50, UNDECODABLE),
        (encode(tone(2.0), 16_000, "mp3")[:200], UNDECODABLE),
        (encode(tone(0.5), 16_000, "wav"), TOO_SHORT),
        (encode(silence(301.0, 8_000), 8_000, "ogg"), TOO_LONG),
        (encode(silence(3.0), 16_000, "m4a"), NO_SPEECH),
    ],
    ids=["empty", "text", "truncated", "short", "long", "silent"],
)
def test_bad_input_gets_its_error_code(data, code):
    with pytest.raises(ProcessingError) as info:
        audio.decode_and_validate(data)
    assert info.value.code == code
    assert info.value.retryable is False


def test_long_recording_stops_decoding_early():
    decoded = audio.decode(encode(silence(400.0, 8_000), 8_000, "ogg"))
    assert decoded.duration_s < 305


def test_same_bytes_same_hash():
    data = encode(tone(1.5), 16_000, "wav")
    assert audio.decode(data).sha256 == audio.decode(data).sha256
