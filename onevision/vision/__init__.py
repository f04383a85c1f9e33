"""Image encoder (feature extraction) and its multi-view contrastive training."""
