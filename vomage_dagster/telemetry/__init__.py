"""Traces and metrics of the platform: what a recording went through, and what users wait for."""
