"""Plumbing every stage shares, with no knowledge of any stage: atomic files and folders (`files`), length-grouped
batches, dynamic padding and batched inference (`batching`), optimizer state on disk and the one training step
the teacher and the neural students share (`checkpoint`, `training`)."""
