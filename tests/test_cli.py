"""The operator's CLI against the local stack."""

import json

import pytest

from vomage_dagster import cli


def test_upload_prints_the_id_last_and_status_reads_it(local_stack, samples, capsys):
    item = samples["en_joy"]
    assert cli.main(["upload", str(item["path"]), "--user", "cli-user", "--lat", "1.5",
                     "--lon", "2.5", "--tz", "Asia/Tokyo", "--lang", "en-US"]) == 0
    rid = capsys.readouterr().out.strip().splitlines()[-1]
    assert rid.startswith("rec-")
    from vomage_dagster.resources.store import ObjectStore
    from vomage_dagster.settings import load_settings

    head = ObjectStore(bucket=load_settings().bucket).head(f"uploads/cli-user/{rid}.m4a")
    assert head["Metadata"] == {"user-id": "cli-user", "lat": "1.5", "lon": "2.5",
                                "tz": "Asia/Tokyo", "lang": "en-US"}
    assert head["ContentType"] == "audio/mp4"
    # No status until the ingest registers the upload.
    assert cli.main(["status", rid, "--json"]) == 1


def test_stack_env_prints_exports(local_stack, capsys):
    assert cli.main(["stack", "env"]) == 0
    out = capsys.readouterr().out
    assert "export AWS_ENDPOINT_URL=http://127.0.0.1:" in out
    assert "export REDIS_URL=redis://127.0.0.1:" in out


def test_unknown_record_is_an_error(local_stack, capsys):
    assert cli.main(["record", "rec-does-not-exist", "--json"]) == 1


def test_upload_of_a_missing_file(local_stack, capsys):
    assert cli.main(["upload", "/nonexistent/file.m4a", "--user", "u"]) == 2


def test_status_json_shape(local_stack, resources, capsys):
    resources["tracker"].register("rec-cli-shape", "uploads/u/rec-cli-shape.m4a")
    assert cli.main(["status", "rec-cli-shape", "--json"]) == 0
    item = json.loads(capsys.readouterr().out)
    assert item["stage"] == "uploaded" and item["error"] is None and item["progress"] == 5


@pytest.mark.parametrize("env", ["cloud", "AWSX"])
def test_bad_env_setting_is_refused(monkeypatch, env):
    from vomage_dagster.settings import load_settings

    with pytest.raises(ValueError):
        load_settings({"VOMAGE_ENV": env})
