"""The local stack's moto patches outside IAM (`local/aws/s3_conditions.py`,
`local/aws/moto_dispatch.py`), in-process: what S3 refuses is refused, and the dispatch
still finds every service."""

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import backends, mock_aws

from vomage_dagster.local.aws import moto_dispatch, s3_conditions


def test_copy_with_another_etag_is_refused_as_s3_refuses_it():
    s3_conditions.apply()
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="conditions-test")
        etag = s3.put_object(Bucket="conditions-test", Key="upload", Body=b"first")["ETag"]
        source = {"Bucket": "conditions-test", "Key": "upload"}
        s3.copy_object(Bucket="conditions-test", Key="copy", CopySource=source, CopySourceIfMatch=etag)
        assert s3.get_object(Bucket="conditions-test", Key="copy")["Body"].read() == b"first"
        s3.put_object(Bucket="conditions-test", Key="upload", Body=b"replaced")
        with pytest.raises(ClientError) as refused:
            s3.copy_object(Bucket="conditions-test", Key="copy2", CopySource=source, CopySourceIfMatch=etag)
        assert refused.value.response["Error"]["Code"] == "PreconditionFailed"


HOSTS = ("127.0.0.1:5000", "dynamodb.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com",
         "sqs.eu-west-1.amazonaws.com", "events.us-east-1.amazonaws.com", "sts.amazonaws.com", "moto_api", None)


def test_the_dispatch_finds_the_same_services_once_per_host():
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    before = DomainDispatcherApplication(lambda backend: None)
    listed = set(backends.list_of_moto_modules())
    found = {host: before.get_backend_for_host(host) for host in HOSTS}
    moto_dispatch.apply()
    after = DomainDispatcherApplication(lambda backend: None)
    assert set(backends.list_of_moto_modules()) == listed and {"s3", "dynamodb", "sqs"} <= listed
    assert {host: after.get_backend_for_host(host) for host in HOSTS} == found
    assert {host: after.get_backend_for_host(host) for host in HOSTS} == found  # remembered
    assert found["dynamodb.us-east-1.amazonaws.com"] == "dynamodb" and found["127.0.0.1:5000"] is None
