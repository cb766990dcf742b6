"""Offline training and fine-tuning of the YOLOv8n disk detector."""
from .dataset import DatasetSpec, build_dataset
from .train import TrainOptions, train

__all__ = ["DatasetSpec", "TrainOptions", "build_dataset", "train"]
