"""The app's Cognito user pool and public client on the local stack's moto.

moto's CloudFormation has no Cognito, so the template's `AppUserPool` and
`AppUserPoolClient` are left out locally (`Condition: IsAws`). `make_pool` creates the
same pool and client through the Cognito API, from the template's own properties (those
CloudFormation computes, like the pool's name and the client's pool id, are supplied
here), with the stack's root keys, as whoever deploys the template would. The local stack
does it once, when it provisions (`stack.up`), and hands the ids to every process as
VOMAGE_USER_POOL_ID and VOMAGE_USER_POOL_CLIENT_ID, the variables the compute stack sets
on AWS.
"""

from __future__ import annotations

from typing import Any

import yaml

from vomage_dagster.local.aws.provision import STACK_NAME, TEMPLATE
from vomage_dagster.resources.aws import client

# CreateUserPool names the pool `PoolName`; the template's `UserPoolName` is a !Sub of it.
POOL_NAME = f"{STACK_NAME}-app-users"
# Properties moto has no use for, or that would outlive a stack that dies with its moto.
NOT_LOCAL = ("DeletionProtection",)


class _CfnLoader(yaml.SafeLoader):
    """The template's YAML, its short-form tags (!Ref, !Sub, …) read as {"Fn::…": …}."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


def _computed(value: object) -> bool:
    return isinstance(value, dict) and any(k == "Ref" or k.startswith("Fn::") for k in value)


def template_properties(logical_id: str) -> dict:
    """A resource's literal properties in the template (not those CloudFormation computes)."""
    template = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)
    props = template["Resources"][logical_id]["Properties"]
    return {k: v for k, v in props.items() if not _computed(v) and k not in NOT_LOCAL}


def make_pool(region: str, endpoint_url: str) -> dict[str, str]:
    """Create the app's pool and client in a fresh moto; their ids."""
    idp = client("cognito-idp", region, endpoint_url)
    pool_id = idp.create_user_pool(PoolName=POOL_NAME, **template_properties("AppUserPool"))["UserPool"]["Id"]
    made = idp.create_user_pool_client(UserPoolId=pool_id, **template_properties("AppUserPoolClient"))
    return {"pool_id": pool_id, "client_id": made["UserPoolClient"]["ClientId"]}

