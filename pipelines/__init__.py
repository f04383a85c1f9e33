"""KFP pipeline definitions (`onevision-train`, `onevision-drift`), their compilation, local runs and submission."""
