"""Datasets: loaders for TweetEval, CSV/TSV/JSONL and Hugging Face layouts, label maps and splits."""
from bertdistill.data.dataset import SPLITS, Dataset, Split, Task, stratified_split, subsample
from bertdistill.data.load import load_dataset, locate

__all__ = ["SPLITS", "Dataset", "Split", "Task", "load_dataset", "locate", "stratified_split", "subsample"]
