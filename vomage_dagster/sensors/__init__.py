"""Sensors: what starts processing when a recording arrives."""
