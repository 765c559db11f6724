"""Task types and model families: what training, evaluation and inference need per task.

Kept free of imports: modules such as ``visionloop.tasks.outputs`` must stay importable without
PyTorch (the edge runtime uses them), and a regular package lets import-linter see this layer.
"""
