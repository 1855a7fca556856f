"""A callback that records, inside the training step, what the speed switches are meant to change."""

from __future__ import annotations

import torch
from lightning.pytorch import Callback


class CallCounter:
    """Calls ``module`` and counts the calls (stands in for the method's compiled backbone)."""

    def __init__(self, module):
        self.module, self.calls = module, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.module(*args, **kwargs)


class SwitchRecorder(Callback):
    """Appends one dict per backbone call of a training step to ``SwitchRecorder.records``.

    Recorded: the images' dtype and memory format, the first convolution's weight format, whether
    autocast is on and its dtype, the features' dtype; once per run the loader settings, whether
    views are made on the device, and whether the compiled backbone is the one ``features`` calls.
    """

    records: list[dict] = []
    run: dict = {}

    def on_train_start(self, trainer, pl_module) -> None:
        loader = trainer.train_dataloader
        SwitchRecorder.run = {
            "num_workers": loader.num_workers,
            "persistent_workers": loader.persistent_workers,
            "pin_memory": loader.pin_memory,
            "augments_on_device": trainer.datamodule.augments_on_device,
        }
        compiled = pl_module._compiled_backbone
        if compiled is not None:
            SwitchRecorder.run["compiled_wraps_backbone"] = compiled._orig_mod is pl_module.backbone
            counter = CallCounter(compiled)
            object.__setattr__(pl_module, "_compiled_backbone", counter)
            SwitchRecorder.run["compiled_calls"] = counter
        else:
            pl_module.backbone.register_forward_hook(self.record)

    @staticmethod
    def record(module, args, output) -> None:
        images = args[0]
        conv = next(m for m in module.modules() if isinstance(m, torch.nn.Conv2d))
        SwitchRecorder.records.append({
            "input_dtype": images.dtype,
            "input_channels_last": images.is_contiguous(memory_format=torch.channels_last),
            "weight_channels_last": conv.weight.is_contiguous(memory_format=torch.channels_last),
            "autocast": torch.is_autocast_enabled("cpu"),
            "autocast_dtype": torch.get_autocast_dtype("cpu"),
            "output_dtype": output.dtype,
        })
