"""Metrics over core labels (pure numpy and pycocotools), used by training and evaluation alike."""
