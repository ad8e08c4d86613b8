"""The status table executes the lifecycle's transitions as conditional DynamoDB writes
(moto): the same guards hold, the same items result, as in the pure model."""

import uuid

from hypothesis import HealthCheck, given, settings
from test_domain_lifecycle import EVENTS, NOW, transition_of

from vomage_dagster.domain import lifecycle as life
from vomage_dagster.resources.status_table import update_request


def test_a_transition_becomes_one_conditional_update():
    request = update_request(life.own("rec-1", 2, "run-a", NOW))
    assert request["Key"] == {"recording_id": "rec-1"}
    names, values = request["ExpressionAttributeNames"], request["ExpressionAttributeValues"]
    condition = request["ConditionExpression"]
    for name, value in names.items():
        condition = condition.replace(name, value)
    for name, value in values.items():
        condition = condition.replace(name, repr(value))
    assert condition == ("((attempt = 2 AND stage_rank < 4) AND (attribute_not_exists(owner) OR owner = 'run-a'))")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(EVENTS)
def test_dynamodb_agrees_with_the_model(resources, events):
    table = resources["tracker"].status
    rid = f"rec-conform-{uuid.uuid4().hex[:10]}"
    model = life.apply(None, life.register(rid, f"uploads/u/{rid}.m4a", NOW))
    assert table.execute(life.register(rid, f"uploads/u/{rid}.m4a", NOW)) == model
    for event in events:
        transition = transition_of(event)
        transition = life.Transition(transition.name, transition.guard, transition.changes, rid)
        try:
            expected = life.apply(model, transition)
        except life.Refused:
            expected = None
        assert table.execute(transition) == expected, (event, model)
        model = expected or model
    assert table.get(rid) == model
