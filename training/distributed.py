"""Data-parallel training under torchrun (gloo, so it runs on CPUs and anywhere torch does)."""
from __future__ import annotations

import os

import torch


def setup_distributed() -> tuple[int, int]:
    """(rank, world size); joins the process group when torchrun started several processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    return dist.get_rank(), dist.get_world_size()


def setup_training(config: dict) -> tuple[int, int]:
    """setup_distributed(), then torch's threads (config["threads"]; 0 keeps torch's default) and its seed
    (config["seed"]), so every rank builds the same initial weights (DDP also broadcasts rank 0's)."""
    rank, world = setup_distributed()
    if config["threads"]:
        torch.set_num_threads(int(config["threads"]))
    torch.manual_seed(config["seed"])
    return rank, world


def average_gradients(parameters, world: int) -> None:
    """Mean of every rank's gradients, in place: what DistributedDataParallel does, for trainers whose several
    networks and optimisers do not fit one DDP wrapper (adversarial updates)."""
    if world <= 1:
        return
    import torch.distributed as dist
    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world


def barrier(world: int) -> None:
    if world > 1:
        torch.distributed.barrier()
