"""Native environments for RL libraries that are optional extras (TorchRL: ``pip install -e '.[torchrl]'``)."""
