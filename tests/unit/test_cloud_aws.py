"""The boundary to AWS: refusals name the permission to grant, and the listing shows progress only to a person."""

import io

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from agent.api import CheckError
from checks.cloud_storage.aws import Denied, NoSuchBucket, Progress, _snake, _translated


class FakeClient:
    class meta:
        endpoint_url = "http://127.0.0.1:9"


def refuse(code: str, status: int = 403, operation: str = "GetBucketLifecycleConfiguration"):
    error = ClientError({"Error": {"Code": code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                        operation)
    with _translated(FakeClient(), operation):
        raise error


def test_access_denied_names_the_iam_action_to_grant():
    with pytest.raises(Denied) as caught:
        refuse("AccessDenied")
    assert caught.value.action == "s3:GetLifecycleConfiguration"
    assert "s3:GetLifecycleConfiguration (GetBucketLifecycleConfiguration)" in str(caught.value)


def test_a_bare_403_is_a_refusal_too():
    with pytest.raises(Denied) as caught:
        refuse("403", operation="GetMetricStatistics")
    assert caught.value.action == "cloudwatch:GetMetricStatistics"


def test_rejected_credentials_are_a_refusal_without_the_key():
    with pytest.raises(Denied, match="credentials were rejected") as caught:
        refuse("InvalidAccessKeyId", operation="ListObjectsV2")
    assert caught.value.action == "s3:ListBucket"


def test_missing_bucket_and_unreachable_endpoint_are_check_errors():
    with pytest.raises(NoSuchBucket):
        refuse("NoSuchBucket", 404)
    with pytest.raises(CheckError, match="cannot reach http://127.0.0.1:9 for ListObjectsV2"):
        with _translated(FakeClient(), "ListObjectsV2"):
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")


def test_operation_names_become_boto3_method_names():
    assert _snake("ListObjectsV2") == "list_objects_v2"
    assert _snake("GetBucketLifecycleConfiguration") == "get_bucket_lifecycle_configuration"
    assert _snake("GetCostAndUsage") == "get_cost_and_usage"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_is_drawn_on_a_terminal_only():
    screen = Terminal()
    bar = Progress("listing acme", 1000, screen)
    bar.update(500)
    bar.close()
    assert "[###############               ] 500 objects (budget 1,000)" in screen.getvalue()
    pipe = io.StringIO()
    quiet = Progress("listing acme", 1000, pipe)
    quiet.update(500)
    quiet.close()
    assert pipe.getvalue() == ""
