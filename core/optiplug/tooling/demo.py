"""Example models and the embedded demo: a small classifier trained on synthetic data.

``optiplug check`` and ``optiplug plot`` show how a recipe's rules split the parameters
of an example model into groups; ``optiplug run`` trains :class:`DemoMLP` on a
:class:`SyntheticTask` with a recipe, one ``Built.step(loss)`` per micro-batch.

>>> model = example_model("resnet_like")
>>> task = SyntheticTask.make(samples=2048, seed=0)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import attrs
import torch
from torch import nn

from optiplug.engine.built_result import Built
from optiplug.errors import ConfigError, did_you_mean

SEED = 0
FEATURES = 16
CLASSES = 4
TEACHER_UNITS, TEACHER_SCALE = 4, 0.3


class ConvNet(nn.Module):
    """Two conv + BatchNorm stages and a linear ``head`` (3x32x32 images, 10 classes)."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.head = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of images."""
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.head(x.mean(dim=(2, 3)))


class BasicBlock(nn.Module):
    """A ResNet basic block; ``downsample`` (conv + BN) when the shape changes."""

    def __init__(self, channels_in: int, channels_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.downsample: nn.Module | None = None
        if stride != 1 or channels_in != channels_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(channels_in, channels_out, 1, stride=stride, bias=False), nn.BatchNorm2d(channels_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The residual sum, rectified."""
        shortcut = x if self.downsample is None else self.downsample(x)
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + shortcut)


class ResNetLike(nn.Module):
    """A stem, two stages of basic blocks (the second downsamples) and a linear ``head``."""

    def __init__(self, classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = nn.Sequential(BasicBlock(width, width), BasicBlock(width, width))
        self.layer2 = nn.Sequential(BasicBlock(width, 2 * width, stride=2), BasicBlock(2 * width, 2 * width))
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of images."""
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.head(x.mean(dim=(2, 3)))


class Attention(nn.Module):
    """Multi-head self-attention with one ``qkv`` projection and an output ``proj``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over the tokens of ``x`` (batch, tokens, dim)."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: ``norm1``, ``attn``, ``norm2``, ``mlp`` (fc1, fc2)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential()
        self.mlp.add_module("fc1", nn.Linear(dim, 2 * dim))
        self.mlp.add_module("act", nn.GELU())
        self.mlp.add_module("fc2", nn.Linear(2 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attention then MLP, each with a residual connection."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViTLike(nn.Module):
    """``patch_embed``, ``cls_token``, ``pos_embed``, ``blocks.N``, a final ``norm`` and a ``head``."""

    def __init__(self, classes: int = 10, image: int = 32, patch: int = 8, dim: int = 32, depth: int = 2) -> None:
        super().__init__()
        tokens = (image // patch) ** 2
        self.patch_embed = nn.Conv2d(3, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*(TransformerBlock(dim, heads=4) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from the class token."""
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])


class DemoMLP(nn.Module):
    """The demo's classifier: two Linear + BatchNorm + ReLU layers and a linear ``head``."""

    def __init__(self, features: int = FEATURES, hidden: int = 64, classes: int = CLASSES) -> None:
        super().__init__()
        self.fc1 = nn.Linear(features, hidden)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.bn2 = nn.BatchNorm1d(hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of feature vectors."""
        x = torch.relu(self.bn1(self.fc1(x)))
        return self.head(torch.relu(self.bn2(self.fc2(x))))


EXAMPLE_MODELS: dict[str, Callable[[], nn.Module]] = {
    "convnet": ConvNet,
    "resnet_like": ResNetLike,
    "vit_like": ViTLike,
    "mlp": DemoMLP,
}


def example_model(name: str, seed: int = SEED) -> nn.Module:
    """A freshly initialised example model (the same weights for the same seed)."""
    factory = EXAMPLE_MODELS.get(name)
    if factory is None:
        known = sorted(EXAMPLE_MODELS)
        raise ConfigError(f"unknown example model {name!r}{did_you_mean(name, known)}; known: {', '.join(known)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


@attrs.frozen
class SyntheticTask:
    """A classification set with a learnable rule: labels from a fixed random two-layer teacher.

    The teacher is small and mildly non-linear (4 tanh units, inputs scaled by 0.3), so
    the demo's MLP reaches about 97% accuracy in a few hundred updates.
    """

    inputs: torch.Tensor
    targets: torch.Tensor

    @classmethod
    def make(cls, samples: int, seed: int = SEED, features: int = FEATURES, classes: int = CLASSES) -> SyntheticTask:
        """``samples`` Gaussian inputs and their teacher labels, reproducible from ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        inputs = torch.randn(samples, features, generator=generator)
        hidden = torch.randn(features, TEACHER_UNITS, generator=generator) * TEACHER_SCALE
        readout = torch.randn(TEACHER_UNITS, classes, generator=generator)
        targets = (torch.tanh(inputs @ hidden) @ readout).argmax(dim=1)
        return cls(inputs, targets)

    def __len__(self) -> int:
        return len(self.targets)


@attrs.frozen
class TrainResult:
    """What a demo run produced: the loss at every step of the schedules' clock and the model's final accuracy.

    A step is an optimizer update (the mean loss of its micro-batches), or an iteration
    where the schedules count iterations (MMCV's clock with accumulation), so the losses
    line up with the curves.
    """

    losses: list[float]
    final_loss: float
    accuracy: float


UpdateCallback = Callable[[int, float], None]


def micro_batches_per_epoch(built: Built) -> int:
    """Micro-batches (``Built.step`` calls) in one epoch of the run: its ``steps_per_epoch``."""
    return built.batches_per_epoch


def train(
    built: Built, model: nn.Module, task: SyntheticTask, batch_size: int, on_update: UpdateCallback | None = None
) -> TrainResult:
    """Train ``model`` over the whole run of ``built`` (reshuffled every epoch, seeded).

    ``on_update(step_index, loss)`` is called after each step of the schedules' clock (an
    update, or an iteration under MMCV's clock) with the
    mean loss of its micro-batches.
    """
    total = built.total_micro_steps
    if total is None:
        raise ConfigError("the demo needs the run's length: give --epochs and --steps-per-epoch")
    with single_thread():
        return _train(built, model, task, batch_size, total, on_update)


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (the thread count is restored after).

    For a model this small, splitting work across threads costs more than it saves (3x
    slower on a busy 2-core machine), and the losses then do not depend on the core count.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _train(
    built: Built, model: nn.Module, task: SyntheticTask, batch_size: int, total: int, on_update: UpdateCallback | None
) -> TrainResult:
    per_epoch = micro_batches_per_epoch(built)
    generator = torch.Generator().manual_seed(SEED + 1)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    losses: list[float] = []
    window: list[float] = []
    order = torch.empty(0, dtype=torch.long)
    for micro in range(total):
        position = micro % per_epoch
        if position == 0:
            order = _epoch_order(len(task), per_epoch * batch_size, generator)
        index = order[position * batch_size : (position + 1) * batch_size]
        loss = loss_fn(model(task.inputs[index]), task.targets[index])
        window.append(float(loss.detach()))
        # counted in the schedules' unit: per update, or per iteration where they count iterations (MMCV)
        if built.step(loss) or built.per_iteration:
            losses.append(sum(window) / len(window))
            window.clear()
            if on_update is not None:
                on_update(len(losses) - 1, losses[-1])
    return TrainResult(losses, *evaluate(model, task))


def _epoch_order(samples: int, needed: int, generator: torch.Generator) -> torch.Tensor:
    """Sample indices for one epoch: shuffled passes over the set, as many as needed."""
    passes = -(-needed // samples)
    return torch.cat([torch.randperm(samples, generator=generator) for _ in range(passes)])[:needed]


def evaluate(model: nn.Module, task: SyntheticTask) -> tuple[float, float]:
    """Loss and accuracy of ``model`` on the whole task, in eval mode."""
    model.eval()
    with torch.no_grad():
        logits = model(task.inputs)
        loss = float(nn.functional.cross_entropy(logits, task.targets))
        accuracy = float((logits.argmax(dim=1) == task.targets).float().mean())
    model.train()
    return loss, accuracy
