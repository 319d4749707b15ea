"""The processing steps that use both: intake, the join, batches, the stats topic."""
