"""The OneVision SID generator: model, staged training, constrained decoding with dynamic pruning."""
