"""Data-parallel training from torchrun's environment; a no-op in a plain process.

`torchrun --nproc-per-node N -m core.cli train ...` sets RANK, WORLD_SIZE and LOCAL_RANK. Every rank runs the
same training loop on its own batches (DistributedDataParallel averages the gradients); rank 0 alone logs,
validates and saves. Stop decisions (deadline, SIGTERM) must agree across ranks, or the ranks that keep going
hang in the next all-reduce: `any` makes one rank's stop everyone's.
"""

from __future__ import annotations

import os
from typing import Any

from core.device import resolve_device


class Distributed:
    """torch.distributed from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); a no-op otherwise."""

    def __init__(self, device_name: str) -> None:
        import torch
        import torch.distributed as dist

        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(resolve_device(device_name))
        if self.world > 1:
            if self.device.type == "cuda":
                self.device = torch.device("cuda", self.local_rank)
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                dist.init_process_group(backend="nccl" if self.device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def any(self, flag: bool) -> bool:
        """True on every rank if `flag` is true on any (stop decisions must agree)."""
        if self.world == 1:
            return flag
        import torch
        import torch.distributed as dist

        value = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def wrap(self, model: Any) -> Any:
        """The module to run forward passes through: DDP over `model` with several ranks, else `model`."""
        if self.world == 1:
            return model
        import torch

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def close(self) -> None:
        import torch.distributed as dist

        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


__all__ = ["Distributed"]
