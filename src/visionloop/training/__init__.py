"""Training runs: configuration, the trainer loop, checkpoints, tuning."""
