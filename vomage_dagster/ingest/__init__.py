"""The one door for uploads: how an upload becomes a run.

Every upload reaches a run through the uploads queue and the ingest service, in every
environment: S3's ObjectCreated notifications, EventBridge "Object Created" events, the
app's own messages, a retry (`vomage retry`, the live view's button) and the upload sweep
(an upload nothing registered) all arrive there as messages.

- consumer.py  receive, parse (a poison message is refused with its reason), settle
- planner.py   register each recording, skip what is final or running, batch the rest
- launcher.py  launch each planned run through Dagster's GraphQL `launchRun`
- service.py   the long-running loop (`vomage ingest`)

Ownership, not planning, is what makes a recording run once: a duplicate delivery or a
second replica can at worst launch a second run of an attempt, which finds the attempt
owned and stands down (`domain/lifecycle.py`).
"""
