"""Operations work on durable outputs: cache warming, metric export, partition retention.

Plain functions over resources, no Dagster: the jobs in `jobs.py` and the CLI call them.
"""
