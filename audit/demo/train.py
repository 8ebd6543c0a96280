"""Train the demo CNN: AdamW with a one-cycle schedule, seeded, on the CPU in well under a minute."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .model import DemoCNN


def train_demo_model(images: np.ndarray, labels: np.ndarray, num_classes: int, epochs: int = 8, seed: int = 0,
                     batch_size: int = 64, lr: float = 5e-3, mean: float = 0.25, std: float = 0.2,
                     width: int = 24) -> DemoCNN:
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x = (torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1) - mean) / std
    y = torch.from_numpy(labels)
    model = DemoCNN(num_classes=num_classes, width=width)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for s in range(0, len(x), batch_size):
            idx = order[s:s + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    return model
