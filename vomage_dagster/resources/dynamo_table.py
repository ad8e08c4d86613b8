"""What every DynamoDB table resource of the platform is: a table name in a region (an
endpoint locally), and the boto3 Table for it (`aws.dynamodb_table`, one per thread)."""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableResource

from vomage_dagster.resources.aws import dynamodb_table


class DynamoTable(ConfigurableResource):
    table_name: str
    region_name: str = "us-east-1"
    endpoint_url: str | None = None

    @property
    def table(self) -> Any:
        return dynamodb_table(self.table_name, self.region_name, self.endpoint_url)
