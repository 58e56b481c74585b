"""The asynchronous-SGD parameter server: applies each gradient as it arrives (Dean et al. 2012).

A worker's gradient was computed on the parameters it last pulled; the number of updates the
server applied since then is its *staleness*. In the multi-process mode arrival order is real;
in the simulated mode it follows the communicator's fixed schedule, so staleness is reproducible.
"""

from __future__ import annotations

from typing import Any

import torch


def make_optimizer(params: list[torch.nn.Parameter], name: str, lr: float,
                   weight_decay: float = 0.01) -> torch.optim.Optimizer:
    """The optimiser every worker (and the server) uses (``weight_decay``: AdamW's only)."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


class ParameterServer:
    """Holds the flat parameter vector and its optimiser.

    Args:
        init: flat initial parameters (the workers' shared initialisation).
        optimizer: ``"adam"`` or ``"sgd"``.
        lr: learning rate.
    """

    def __init__(self, init: torch.Tensor, optimizer: str, lr: float, weight_decay: float = 0.01) -> None:
        self.param = torch.nn.Parameter(init.detach().clone().float())
        self.optimizer = make_optimizer([self.param], optimizer, lr, weight_decay)
        self.version = 0
        self.staleness: list[int] = []

    def apply(self, grad: torch.Tensor, version: int) -> tuple[int, int, torch.Tensor]:
        """Apply a gradient computed at ``version``; returns ``(new_version, staleness, params)``."""
        staleness = self.version - version
        self.param.grad = grad.to(self.param.dtype).reshape(self.param.shape).clone()
        self.optimizer.step()
        self.version += 1
        self.staleness.append(staleness)
        return self.version, staleness, self.param.detach().clone()

    def state_dict(self) -> dict[str, Any]:
        return {"param": self.param.detach().clone(), "optimizer": self.optimizer.state_dict(),
                "version": self.version, "staleness": torch.tensor(self.staleness, dtype=torch.int64)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.param.copy_(state["param"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.version = int(state["version"])
        self.staleness = state["staleness"].tolist()
