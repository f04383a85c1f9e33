"""A small MLP (or logistic regression) over standardised features: trained with torch on weighted
binary labels, stored as numpy arrays and scored with numpy, so a stage loads without torch and scores
the same after save/load."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from onevision.cascade.config import ScorerConfig
from onevision.threads import single_torch_thread


class Scorer:
    def __init__(self, config: ScorerConfig, feature_names: list[str], mean: np.ndarray, std: np.ndarray,
                 weights: list[np.ndarray], biases: list[np.ndarray]):
        self.config = config
        self.feature_names = list(feature_names)
        self.mean = np.asarray(mean, np.float32)
        self.std = np.asarray(std, np.float32)
        self.weights = [np.asarray(w, np.float32) for w in weights]
        self.biases = [np.asarray(b, np.float32) for b in biases]
        if self.weights[0].shape[0] != len(self.feature_names) or self.mean.shape != (len(self.feature_names),):
            raise ValueError(
                f"scorer weights expect {self.weights[0].shape[0]} features, names give {len(self.feature_names)}"
            )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Logits of features (..., F) → (...,) float32."""
        if x.shape[-1] != len(self.feature_names):
            raise ValueError(
                f"scorer expects {len(self.feature_names)} features ({self.feature_names}), got {x.shape[-1]}"
            )
        h = ((x.reshape(-1, x.shape[-1]) - self.mean) / self.std).astype(np.float32)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return h.reshape(x.shape[:-1])

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, weight: np.ndarray, feature_names: list[str], config: ScorerConfig,
            holdout: np.ndarray | None = None, desc: str = "scorer", progress: bool = True) -> Scorer:
        """Train on features x (R, F), binary labels y (R,) and sample weights (R,).

        holdout: bool (R,), rows kept out of training to pick the epoch with the lowest weighted loss on them
        (early stopping after `config.patience` epochs without improvement); None trains on every row for
        the full schedule."""
        x = np.asarray(x, np.float32)
        if x.ndim != 2 or len(x) != len(y) or len(y) != len(weight) or len(x) == 0:
            raise ValueError(
                f"{desc}: expected x (R, F) with R > 0 and y, weight (R,), "
                f"got {x.shape}, {np.shape(y)}, {np.shape(weight)}"
            )
        if holdout is not None and (np.shape(holdout) != (len(x),) or np.all(holdout)):
            raise ValueError(f"{desc}: holdout must be a bool mask of {len(x)} rows that leaves some rows to train on")
        with single_torch_thread():
            return cls._fit(x, np.asarray(y, np.float32), np.asarray(weight, np.float32), feature_names, config,
                            holdout, desc, progress)

    @classmethod
    def _fit(cls, x: np.ndarray, y: np.ndarray, weight: np.ndarray, feature_names: list[str], config: ScorerConfig,
             holdout: np.ndarray | None, desc: str, progress: bool) -> Scorer:
        import torch
        from torch import nn
        from tqdm import tqdm

        train = np.ones(len(x), bool) if holdout is None else ~np.asarray(holdout, bool)
        mean = x[train].mean(0)
        std = x[train].std(0)
        std = np.where(std > 1e-6, std, 1.0).astype(np.float32)
        torch.manual_seed(config.seed)
        sizes = [x.shape[1], *config.hidden, 1]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        model = nn.Sequential(*layers)
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        xs = torch.from_numpy((x - mean) / std)
        ys = torch.from_numpy(y)
        ws = torch.from_numpy(weight / weight[train].mean())
        bce = nn.functional.binary_cross_entropy_with_logits

        def loss_of(idx: torch.Tensor) -> torch.Tensor:
            return (bce(model(xs[idx]).squeeze(-1), ys[idx], reduction="none") * ws[idx]).mean()

        train_idx = torch.from_numpy(np.flatnonzero(train))
        val_idx = torch.from_numpy(np.flatnonzero(~train))
        gen = torch.Generator().manual_seed(config.seed)
        steps = -(-len(train_idx) // config.batch_size)
        best, best_state, stale = float("inf"), None, 0
        bar = tqdm(range(config.epochs_for(len(train_idx))), desc=desc, unit="epoch", leave=False, disable=not progress)
        for _ in bar:
            perm = train_idx[torch.randperm(len(train_idx), generator=gen)]
            total = 0.0
            for s in range(steps):
                loss = loss_of(perm[s * config.batch_size : (s + 1) * config.batch_size])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach())
            if len(val_idx) == 0:
                bar.set_postfix(loss=f"{total / steps:.4f}")
                continue
            with torch.no_grad():
                val = float(loss_of(val_idx))
            bar.set_postfix(loss=f"{total / steps:.4f}", val=f"{val:.4f}")
            if val < best - 1e-5:
                best, stale = val, 0
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
                if stale >= config.patience:
                    break
        if best_state is not None:
            model.load_state_dict(best_state)
        linears = [m for m in model if isinstance(m, nn.Linear)]
        return cls(
            config, feature_names, mean, std,
            [m.weight.detach().numpy().T.copy() for m in linears],
            [m.bias.detach().numpy().copy() for m in linears],
        )

    def save(self, directory: str | Path, name: str = "scorer") -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {"mean": self.mean, "std": self.std}
        arrays.update({f"w{i}": w for i, w in enumerate(self.weights)})
        arrays.update({f"b{i}": b for i, b in enumerate(self.biases)})
        np.savez(directory / f"{name}.npz", **arrays)
        meta = {"config": asdict(self.config), "feature_names": self.feature_names, "layers": len(self.weights)}
        (directory / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | Path, name: str = "scorer") -> Scorer:
        directory = Path(directory)
        meta_path, arrays_path = directory / f"{name}.json", directory / f"{name}.npz"
        for p in (meta_path, arrays_path):
            if not p.exists():
                raise FileNotFoundError(f"scorer artifact missing: {p}")
        meta = json.loads(meta_path.read_text())
        cfg = meta["config"]
        cfg["hidden"] = tuple(cfg["hidden"])
        with np.load(arrays_path) as z:
            n = meta["layers"]
            return cls(ScorerConfig(**cfg), meta["feature_names"], z["mean"], z["std"],
                       [z[f"w{i}"] for i in range(n)], [z[f"b{i}"] for i in range(n)])
