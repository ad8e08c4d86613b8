"""Bedrock batch inference: submit a JSONL of requests, follow the job, read the results."""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableResource

from vomage_dagster.resources.aws import client


class BatchInference(ConfigurableResource):
    role_arn: str = ""  # VOMAGE_BEDROCK_BATCH_ROLE_ARN: the role Bedrock runs the job as
    region_name: str = "us-east-1"
    endpoint_url: str | None = None

    @property
    def bedrock(self) -> Any:
        return client("bedrock", self.region_name, self.endpoint_url)

    def submit(self, name: str, token: str, model_id: str, input_uri: str, output_uri: str) -> str:
        """Create the job (idempotent through `token`); its ARN."""
        if not self.role_arn:
            raise ValueError("VOMAGE_BEDROCK_BATCH_ROLE_ARN is not set: Bedrock needs a role to run a batch "
                             "job as (the stack's output BedrockBatchServiceRoleArn)")
        resp = self.bedrock.create_model_invocation_job(
            jobName=name, clientRequestToken=token, roleArn=self.role_arn, modelId=model_id,
            # Native bodies: Converse-type batch jobs refuse toolConfig (domain.batch).
            modelInvocationType="InvokeModel",
            inputDataConfig={"s3InputDataConfig": {"s3Uri": input_uri, "s3InputFormat": "JSONL"}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": output_uri}},
        )
        return resp["jobArn"]

    def describe(self, job_arn: str) -> dict:
        return self.bedrock.get_model_invocation_job(jobIdentifier=job_arn)

    @staticmethod
    def output_key(output_prefix: str, job_arn: str, input_key: str) -> str:
        """Where Bedrock writes a job's results: `<output>/<job id>/<input name>.out`."""
        return f"{output_prefix.rstrip('/')}/{job_arn.rsplit('/', 1)[1]}/{input_key.rsplit('/', 1)[1]}.out"
