"""The label stage: the teacher's raw logits (T = 1) for the transfer set, val and test, cached on disk in
resumable, hash-checked chunks (`soft_labels`), optionally shared out between processes (`distributed`)."""
