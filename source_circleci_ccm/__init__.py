"""Airbyte source for CircleCI continuous-controls-monitoring evidence."""
