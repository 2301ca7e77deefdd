"""optiplug_compile: scheduled options as 0-dim tensors, so ``torch.compile`` of the step compiles once.

A compiled ``optimizer.step`` guards on every Python number it reads: a scheduler that
writes a new float lr into a group at each update makes torch recompile the step at each
update, until it gives up (``recompile_limit``). With ``run.compile: true`` (or
``optiplug.build(..., compile=True)``) the options torch takes as tensors (the lr, and the
betas of Adam and AdamW) become 0-dim tensors, the optimizer gets the kernel torch
requires for them (capturable on a GPU, the per-tensor loop on the CPU), and the
scheduler writes each new value into the tensor in place (``fill_``)::

    run:
      compile: true

    built = optiplug.build(recipe, model, steps_per_epoch=len(loader), num_epochs=90)
    step = torch.compile(built.optimizer.step)

The wrapper ``{name: compile}`` does the same conversion; ``run.compile`` adds it last and
also checks that every scheduled option became a tensor. See docs/plugins/compile.md.
"""

from __future__ import annotations

from optiplug import WrapperSpec, hookimpl


@hookimpl
def optiplug_wrappers() -> list[WrapperSpec]:
    """The ``compile`` wrapper (what ``run.compile: true`` applies)."""
    from optiplug_compile.tensors import CompileConfig, wrap_compile

    return [
        WrapperSpec(
            name="compile",
            config_class=CompileConfig,
            wrap=wrap_compile,
            description="options as 0-dim tensors written in place, for torch.compile (what run.compile applies)",
        )
    ]
