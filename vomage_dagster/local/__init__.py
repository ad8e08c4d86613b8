"""Stand-ins for AWS and for a deployment, for a laptop and CI; nothing that ships imports it.

- aws/         the embedded stack: moto, redis-servers, provisioning from the template
- models/      the local model server: Transcribe (batch and streaming) and Bedrock on offline models
- deployment/  a local Dagster deployment: daemon, warm run workers, ingest service, cluster, Postgres
- client/      the app, simulated: uploads as the app makes them, speaking while streaming
- demo/        the demo's drivers: the bundled samples through the real path, then the operations
- processes.py starting and stopping the processes all of these run, whatever stops them
"""

from pathlib import Path

# The checkout: workspace.yaml, deploy/, samples/.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
