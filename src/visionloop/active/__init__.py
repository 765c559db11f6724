"""Active learning and calibrated auto-labeling: which items humans should label, and which
model labels may be accepted without them."""
