"""Amazon Transcribe streaming over its WebSocket API: the AWS event-stream frames, the
SigV4-presigned URL the app connects with, and a small client (the benchmark's simulated
app and the server-side fallback use it). docs/sources.md says why not the Python SDKs.
"""
