"""VRQ: vision-aligned residual quantisation into hierarchical semantic IDs."""
