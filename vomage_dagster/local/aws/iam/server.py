"""moto's server with IAM checked as AWS checks it (the package docstring says how), and
CopyObject's source ETag condition (`local/aws/s3_conditions.py`), its per-request
dispatch made cheap (`local/aws/moto_dispatch.py`), SQS's per-message checks
(`local/aws/moto_sqs.py`) and DynamoDB's item answers (`local/aws/moto_dynamodb.py`).

    python -m vomage_dagster.local.aws.iam.server [moto.server's arguments]
"""

import sys

from vomage_dagster.local.aws import moto_dispatch, moto_dynamodb, moto_sqs, s3_conditions
from vomage_dagster.local.aws.iam import enforcement


def main(argv: list[str]) -> None:
    enforcement.apply()  # before moto builds its app
    s3_conditions.apply()
    moto_dispatch.apply()
    moto_sqs.apply()
    moto_dynamodb.apply()
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
