"""The local stand-in for the trace collector (X-Ray's OTLP endpoint on AWS)."""
