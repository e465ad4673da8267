"""Datasets: loaders for TweetEval, CSV/TSV/JSONL and Hugging Face layouts, label maps and splits."""
from bertdistill.data.dataset import SPLITS, Dataset, Split, Task, stratified_split, subsample
from bertdistill.data.load import load_dataset, locate, locate_root

__all__ = ["SPLITS", "Dataset", "Split", "Task", "load_dataset", "locate", "locate_root", "stratified_split",
           "subsample"]
