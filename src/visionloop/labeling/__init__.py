"""Connectors to labeling tools (Label Studio): push tasks with predictions, pull human labels."""
