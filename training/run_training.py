"""Reproducible training run of the shipped detector (see docs/model-card.md).

    python training/run_training.py --out training/runs/ndpd-v1 --data training/data --randomization v1 --hours 1.6 --seed 0
    python training/run_training.py --out training/runs/ndpd-v2 --data training/data-v2 --randomization v2 \
        --weights shipped --lr0 0.001 --hours 1.2 --seed 1   # ndpd-v2: v1 (git show fbe8d2f:py4dstem_ndpd/weights/ndpd_yolov8n.pt) fine-tuned
    python training/run_training.py --out training/runs/ndpd-v3 --data training/data-v3 --randomization v3 \
        --weights shipped --lr0 0.001 --hours 1.25 --seed 2  # ndpd-v3 (shipped): v1 fine-tuned the same way
    python training/choose_conf.py --weights training/runs/ndpd-v3/weights/best.pt   # its threshold (0.40)

Builds the dataset under training/data/ (seeded), then trains; rerun with --resume to continue.
"""
import argparse
import logging
from pathlib import Path

from py4dstem_ndpd.training import DatasetSpec, TrainOptions, build_dataset, train

p = argparse.ArgumentParser()
p.add_argument("--out", default="training/runs/ndpd-v1")
p.add_argument("--data", default="training/data")
p.add_argument("--hours", type=float, default=None)
p.add_argument("--epochs", type=int, default=100)
p.add_argument("--n-train", type=int, default=2400)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--resume", action="store_true")
p.add_argument("--randomization", default="v3", choices=["v1", "v2", "v3", "v4"])
p.add_argument("--weights", default=None, help="start from these weights ('shipped': the package's model)")
p.add_argument("--lr0", type=float, default=None, help="initial learning rate (default 0.002, AdamW)")
a = p.parse_args()
logging.basicConfig(level=logging.INFO)
data_yaml = Path(a.data) / "data.yaml"
if not data_yaml.exists():
    data_yaml = build_dataset(a.data, DatasetSpec(n_train=a.n_train, seed=a.seed, randomization=a.randomization))
best = train(data_yaml, a.out, TrainOptions(epochs=a.epochs, hours=a.hours, seed=a.seed, resume=a.resume,
                                            weights=a.weights, lr0=a.lr0))
print("best weights:", best)
