"""The local stack refuses what IAM would refuse.

moto's server can check every call against the caller's IAM policies, but moto 5.2.5 knows
the resource of a call only for S3, SQS and IAM, ignores conditions, stores the template's
inline policies in a form it then cannot read, and answers JSON services' refusals in XML.
This package makes its checks behave like AWS's for the calls the platform makes:

- `policies.py`    the policy engine: actions, resources, conditions, Deny over Allow, trust
                   policies; pure, tested in `tests/test_iam_policies.py`
- `resolvers.py`   per service, the IAM action, resource ARNs and condition keys a request
                   is checked as (DynamoDB tables and indexes, event buses, queues, topics,
                   alarms, log groups, Transcribe jobs, Bedrock models and profiles, KMS keys)
- `enforcement.py` the hooks in moto: every request through the engine; presigned URLs and
                   browser POST uploads verified and authorised on the signer; refusals in
                   each protocol's own shape; CloudFormation's inline and managed policies
                   stored as IAM stores them; `POST /moto-api/iam/authorize` for the local
                   model server, which serves Bedrock and Transcribe itself
- `server.py`      `python -m vomage_dagster.local.aws.iam.server`: moto's server with all of it

The stack starts it with enforcement on from the first request (`INITIAL_NO_AUTH_ACTION_COUNT=0`)
and the stack's own `testing` keys acting as the account root (`MOTO_IAM_ROOT_KEYS`): the
stack provisions with them and assumes each template role for the process that runs as it.
Not modelled: resource-based policies (bucket, queue, topic, key policies), session
policies, permission boundaries, tag conditions, date and IP operators (an Allow that needs
one never applies), credential expiry. Written against moto 5.2.5: `apply` warns on another.
"""
