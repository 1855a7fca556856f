"""The bad-input catalogue (README "Bad input"): each case exits non-zero with one clear line on stderr
(no traceback), and the existing run in the same experiment is left untouched. Every case runs
in-process (`main`); one also as a process. Errors of parsing exit 2, all others 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, tiny_args  # tests/cli/conftest.py

EXISTING = {"config.yaml": b"# another run\n", "subset.json": b"{}", "metrics.csv": b"step\n0\n",
            "checkpoints/last.ckpt": b"weights"}

# case: (extra arguments, data root kind, words stderr must contain, exit code)
CASES = {
    "unknown_method": (["--model.class_path", "sslprobe.methods.Nope"], "real", ["Nope"], 2),
    "unknown_backbone": (["--model.init_args.backbone", "resnet50"], "real",
                         ["model.init_args.backbone: expected one of 'resnet12', 'resnet18', 'vit_tiny', "
                          "got 'resnet50'"], 2),
    "unknown_logger": (["--trainer.logger", "lightning.pytorch.loggers.Nope"], "real",
                       ["trainer.logger: no class 'lightning.pytorch.loggers.Nope'"], 2),
    "unknown_precision": (["--run.precision", "fast"], "real",
                          ["run.precision: expected one of 'auto', got 'fast'"], 2),
    "unknown_imbalance": (["--data.imbalance", "skewed"], "real", ["data.imbalance", "skewed"], 2),
    "concentration": (["--data.imbalance", "dirichlet", "--data.concentration", "0"], "real",
                      ["data.concentration: expected a number > 0, got 0"], 2),
    "imbalance_ratio": (["--data.imbalance", "long_tail", "--data.imbalance_ratio", "0.5"], "real",
                        ["data.imbalance_ratio: expected a number >= 1, got 0.5"], 2),
    "shot_threshold": (["--probes.linear_eval.few_shot_below", "-1"], "real",
                       ["probes.linear_eval.init_args.few_shot_below: expected an int >= 0, got -1"], 2),
    "subset_too_large": (["--data.subset_size", "60000"], "real",
                         ["data.subset_size=60000 is larger than the 50000 images"], 1),
    "missing_root": ([], "absent", ["CIFAR-10 not found under", "absent", "--data.root", "--data.download"], 1),
    "malformed_file": ([], "truncated", ["data_batch_5 is not a readable CIFAR-10 batch file"], 1),
    "temperature": (["--model.init_args.temperature", "0"], "real",
                    ["model.init_args.temperature: expected a number > 0, got 0"], 2),
    "zero_output_dim": (["--model.init_args.output_dim", "0"], "real",
                        ["model.init_args.output_dim: expected a positive int, got 0"], 2),
    "unknown_option": (["--trainer.max_epochz", "1"], "real",
                       ["unknown option 'trainer.max_epochz'", "did you mean 'trainer.max_epochs'"], 2),
    "unknown_method_option": (["--model.init_args.temprature", "0.3"], "real",
                              ["unknown option 'temprature'", "did you mean 'temperature'"], 2),
    "abbreviated_option": (["--trainer.max_epoch", "1"], "real", ["did you mean 'trainer.max_epochs'"], 2),
    "unknown_probe_option": (["--probes.landscape.grid_pointz", "3"], "real",
                             ["probes.landscape: unknown option 'grid_pointz'", "did you mean 'grid_points'"], 2),
    "unknown_config_key": (["--config", "TYPO_CONFIG"], "real",
                           ["model: unknown option 'temprature'", "did you mean 'temperature'"], 2),
    "unknown_config_section": (["--config", "TYPO_SECTION"], "real",
                               ["unknown option 'trainr.max_epochs'", "did you mean 'trainer.max_epochs'"], 2),
    "negative_coefficient": (["--config", "VICREG", "--model.init_args.sim_coeff", "-1"], "real",
                             ["model.init_args.sim_coeff: expected a number >= 0, got -1"], 2),
    "alpha_negative": (["--config", "INFONCE", "--model.init_args.alpha", "-0.5"], "real",
                       ["model.init_args.alpha: expected a number >= 0, got -0.5"], 2),
    "beta_zero": (["--config", "INFONCE", "--model.init_args.beta", "0"], "real",
                  ["model.init_args.beta: expected a number > 0, got 0"], 2),
    "vit_depth": (["--model.init_args.backbone", "vit_tiny", "--model.init_args.backbone_kwargs", "{depth: 0}"],
                  "real", ["model.init_args.backbone_kwargs.depth: expected a positive int, got 0"], 2),
    "vit_patch": (["--model.init_args.backbone", "vit_tiny", "--model.init_args.backbone_kwargs", "{patch_size: 5}"],
                  "real", ["image size 32 is not divisible by patch size 5"], 1),
    "batch_larger_than_subset": (["--data.batch_size", "500"], "real",
                                 ["data.batch_size=500 is larger than the 200 training images"], 1),
    "gpu_devices": (["--trainer.accelerator", "gpu", "--trainer.devices", "2"], "real", ["gpu backend"], 1),
    "cpu_devices": (["--trainer.devices", "4096"], "real", ["trainer.devices=4096 CPU processes"], 1),
    "landscape_one_point": (["--config", "LANDSCAPE", "--probes.landscape.grid_points", "1"], "real",
                            ["probes.landscape.init_args.grid_points: expected an int >= 2, got 1"], 2),
    "bad_crop_scale": (["--data.crop_scale", "[0.9, 0.5]"], "real", ["data.crop_scale must satisfy"], 1),
    "unwritable_root": (["--trainer.default_root_dir", "/proc/sslprobe-runs"], "real", ["is not writable"], 1),
    "resume_missing": (["--ckpt_path", "last", "--run.experiment", "other"], "real",
                       ["no run of experiment 'other'", "checkpoints/last.ckpt"], 1),
    "corrupted_checkpoint": (["--ckpt_path", "CORRUPT"], "real", ["is not a readable checkpoint"], 1),
    "foreign_checkpoint": (["--ckpt_path", "FOREIGN"], "real",
                           ["was trained with another model", "class_path: checkpoint 'sslprobe.methods.BarlowTwins'",
                            "backbone: checkpoint 'resnet18'"], 1),
    "reused_run_directory": (["--run.version", "version_0"], "real", ["version_0/config.yaml exists"], 1),
    "folder_without_classes": (["--data.dataset", "image_folder"], "flat_folder", ["has no class folders"], 1),
    "undecodable_image": (["--data.dataset", "image_folder"], "bad_image",
                          ["broken.jpg is not a decodable image", "on_undecodable: skip"], 1),
    "image_size_for_backbone": (["--data.image_size", "8"], "real", ["resnet12 cannot take 8x8 images"], 1),
    "vit_patch_for_image_size": (["--model.init_args.backbone", "vit_tiny", "--model.init_args.backbone_kwargs",
                                  "{patch_size: 4}", "--data.image_size", "30"], "real",
                                 ["image size 30 is not divisible by patch size 4"], 1),
    "over_memory_cap": (["--data.max_memory_gb", "0.1"], "real",
                        ["cifar10 needs 0.17 GiB in memory, more than data.max_memory_gb=0.1"], 1),
    "negative_memory_cap": (["--data.max_memory_gb", "-1"], "real", ["data.max_memory_gb"], 2),
    "coarse_labels_on_cifar10": (["--data.label_set", "coarse"], "real",
                                 ["data.label_set='coarse': cifar10 has no such labels"], 1),
    "unknown_dataset": (["--data.dataset", "imagenet"], "real", ["data.dataset", "imagenet"], 2),
    "classes_of_the_supervised_baseline": (["--config", "SUPERVISED", "--data.dataset", "cifar100", "--data.imbalance",
                                            "full", "--data.subset_size", "null"], "real",
                                           ["model.init_args.num_classes=10, but cifar100 (fine) has 100 classes"], 1),
}
PLACEHOLDERS = {
    "VICREG": str(REPO / "configs" / "methods" / "vicreg.yaml"),
    "INFONCE": str(REPO / "configs" / "methods" / "info_nce.yaml"),
    "SUPERVISED": str(REPO / "configs" / "methods" / "supervised.yaml"),
    "LANDSCAPE": str(REPO / "callbacks" / "landscape.yaml"),
}


def special_files(tmp: Path) -> dict[str, str]:
    """A truncated checkpoint, a checkpoint of another method and backbone, and configs with a misspelt key."""
    import torch

    corrupt = tmp / "corrupt.ckpt"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    foreign = tmp / "foreign.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"_class_path": "sslprobe.methods.BarlowTwins",
                                                       "backbone": "resnet18"}}, foreign)
    typo_config = tmp / "typo_key.yaml"
    typo_config.write_text("model:\n  init_args:\n    temprature: 0.3\n")
    typo_section = tmp / "typo_section.yaml"
    typo_section.write_text("trainr:\n  max_epochs: 1\n")
    return {"CORRUPT": str(corrupt), "FOREIGN": str(foreign), "TYPO_CONFIG": str(typo_config),
            "TYPO_SECTION": str(typo_section)}


def data_root(kind: str, cifar_root: Path, tmp: Path) -> Path:
    if kind == "real":
        return cifar_root
    if kind == "absent":
        return tmp / "absent"
    if kind in ("flat_folder", "bad_image"):
        from PIL import Image

        folder = tmp / kind
        places = [folder / split / f"class{c}" for split in ("train", "test") for c in (0, 1)]
        for index, where in enumerate(places if kind == "bad_image" else [folder] * 4):
            where.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (index, 0, 0)).save(where / f"{index}.png")
        if kind == "bad_image":
            (folder / "train" / "class1" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
        return folder
    folder = tmp / "truncated" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for source in (cifar_root / "cifar-10-batches-py").iterdir():
        (folder / source.name).symlink_to(source)
    (folder / "data_batch_5").unlink()
    (folder / "data_batch_5").write_bytes((source.parent / "data_batch_5").read_bytes()[:4096])
    return folder.parent


def prepare(case: str, cifar_root: Path, tmp: Path) -> tuple[Path, list[str]]:
    """A run root holding an existing run ``exp/version_0``, and the arguments of ``case``."""
    extra, kind, _, _ = CASES[case]
    root = tmp / "runs"
    for name, content in EXISTING.items():
        path = root / "exp" / "version_0" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    names = {**PLACEHOLDERS, **special_files(tmp)}
    extra = [names.get(arg, arg) for arg in extra]
    args = tiny_args("simclr", data_root(kind, cifar_root, tmp), root,
                     "--run.experiment", "exp", *extra)
    return root, args


def check_failure(case: str, root: Path, code: int, err: str) -> None:
    _, _, words, expected_code = CASES[case]
    assert code == expected_code, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("sslprobe: error:")]
    assert len(lines) == 1, err
    message = lines[0]
    assert "usage:" not in err
    for word in words:
        assert word in message, (word, message)
    # The existing run is untouched and the failed one is not recorded as a run.
    for name, content in EXISTING.items():
        assert (root / "exp" / "version_0" / name).read_bytes() == content
    assert [p.parent.name for p in root.glob("exp/*/config.yaml")] == ["version_0"]
    # Nothing is left behind: no new run directory (it would shift version numbers), no W&B run.
    assert sorted(p.name for p in root.iterdir()) == ["exp"]
    assert sorted(p.name for p in (root / "exp").iterdir()) == ["version_0"]
    assert not list(root.rglob("wandb"))


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_clearly(case, cifar_root, tmp_path, run_cli):
    if case == "gpu_devices":
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA device is present: asking for a GPU is not bad input here")
    root, args = prepare(case, cifar_root, tmp_path)
    code, _, err = run_cli(args)
    check_failure(case, root, code, err)


def test_process_exit_status(cifar_root, tmp_path):
    case = "malformed_file"
    root, args = prepare(case, cifar_root, tmp_path)
    env = {key: value for key, value in os.environ.items() if key != "SSLPROBE_DEBUG"}
    process = subprocess.run([sys.executable, "-m", "sslprobe", *args], cwd=REPO, env=env, text=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=240)
    check_failure(case, root, process.returncode, process.stderr)
