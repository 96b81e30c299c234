"""How much host and GPU memory each network job needs, and what the machine has (issue 24).

``job_memory(rule, config, dataset)`` is the one home of every rule's ``mem_mb`` and
``gpu_mem_mb`` (workflow/rules/common.smk declares them from it; profiles/slurm requests the same
``mem_mb``). Locally, Snakemake packs jobs under the machine's budgets (``machine_budget``: host
memory, and GPU memory summed over the GPUs), which common.smk registers when the command line
gives none, so small jobs share a GPU and large ones do not, with no ``--resources gpu=K`` to
choose.

Host memory (``mem_mb``), per job, times ``HOST_MARGIN``: a fixed part per rule class
(``HOST_BASE_MB``: interpreter, torch, the command's objects), the parameters (with Adam's state
when training), on the CPU the activations (the same per-image bytes as on a GPU, below), on a
GPU ``CUDA_HOST_MB`` instead, and the terms that grow with the job's sizes (images held as
float32, features, encodings). ``benchmarks/memory.py`` measures the peaks it must cover (peak
RSS of the real CLI command on a synthetic dataset) and tests/test_memory.py checks them. The processed dataset is not in it:
``load_split`` maps the file (pipeline/data/store.py), so its pages sit once in the page cache for
every job of that dataset, and ``machine_budget`` sets their total aside from the host budget
(``shared_data_mb``).

GPU memory (``gpu_mem_mb``), computed, not yet measured on a GPU (the benchmark records
``torch.cuda.max_memory_allocated`` per job where CUDA is present; ``python benchmarks/memory.py
--device cuda`` on the GPU box measures them)::

    gpu_mem_mb = CUDA_CONTEXT_MB                       # the CUDA context and kernels, outside the allocator
               + params * bytes_per_param / 2^20       # 16 B training (weights, grads, Adam m and v), 4 B inference
               + batch * activation_bytes / 2^20 * GPU_ALLOCATOR_FACTOR
               + data on the device (uint8 training set)

``activation_bytes`` per image is what autograd saves for the backward pass of one training step
(``activation_bytes_per_image``: counted with saved-tensor hooks, device-independent in float32),
for inference an upper bound on what is alive at once (a forward without grad frees each
activation once it is consumed). ``GPU_ALLOCATOR_FACTOR`` covers the caching allocator's rounding
and cuDNN workspaces.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

MB = 2**20

# ---- measured constants (benchmarks/memory.py; reference/memory/*.json; tests/test_memory.py checks them) ----
# Rule classes: the rules of a class run the same code path on a model.
RULE_CLASS = {
    "train_model": "train",
    "evaluate_model": "evaluate",
    "encode": "encode",
    "sample": "sample",
    "fid_reference": "fid",
    "fid_real": "fid",
    "fid_model": "fid",
    "figure2": "figure",
    "figure3": "figure",
    "figure4": "figure",
    "figure5": "interpolation",
    "figure6": "interpolation",
    "slp_run": "interpolation",
}
NETWORK_RULES = tuple(RULE_CLASS)

# Host: the fixed part of each rule class's peak RSS (the measured peak less its parameters,
# activations and sized terms; reference/memory/cpu.json, 2-core Xeon). Torch alone is ~400 MB.
# Sized for the heaviest prior: LaDDer's jobs peak 100-200 MB above the normal prior's (its prior
# VAE and scikit-learn's mixture: encoding 948 against 829 MB, sampling 984 against 837), and
# Figure 5 loads three models (1,246 MB).
HOST_BASE_MB = {  # per rule class, MB, whatever the architecture: interpreter, torch, the command's own objects
    "train": 700, "evaluate": 1100, "encode": 800, "sample": 800, "fid": 1300, "figure": 900, "interpolation": 1000,
}  # fid: 2,436 MB measured for fid_reference at 128 MNIST images (Inception's CPU activations exceed the 12 MB/image bound)
CUDA_HOST_MB = 1500  # host memory CUDA's runtime and libraries take once initialised (not yet measured here)
HOST_MARGIN = 1.25  # over the measured peak: allocator growth, Python objects the benchmark's sizes miss
FID_FEATURE_BYTES = 2048 * 8 * 3  # per image: Inception pool features, float32 then float64 for the statistics
CUDA_CONTEXT_MB = 600  # CUDA context, cuBLAS/cuDNN handles and kernels: outside torch's allocator
GPU_ALLOCATOR_FACTOR = 1.25  # backward's transient gradients, the caching allocator's rounding, cuDNN workspaces
TRAIN_BYTES_PER_PARAM = 16  # float32 weights, gradients, Adam's two moments
INFERENCE_BYTES_PER_PARAM = 4
CPU_INFERENCE_WORKSPACE = 2  # CelebA sampling at batch 32 on the CPU: 1,784 MB measured, 1,623 declared without it
# Decoder evaluations per pass of the importance-sampled log-likelihood (pipeline.likelihood's
# chunk_size): at most LOGLIK_CHUNK per device type, and no more than fit LOGLIK_PASS_BYTES of
# inference activations (loglik_chunk). MNIST-size networks get the first (2,048 / 16,384); a
# CelebA decoder holds 16 MB per image, so 16,384 of them at once would need ~256 GB of GPU memory.
LOGLIK_CHUNK = {"cpu": 2048, "cuda": 16384}
LOGLIK_PASS_BYTES = {"cpu": 2 * 2**30, "cuda": 8 * 2**30}
INCEPTION_PARAMS = 23_885_392  # torch-fidelity's FeatureExtractorInceptionV3 (2048 pool features)
INCEPTION_BYTES_PER_IMAGE = 12 * MB  # largest (input + output) of a layer at 299x299 (benchmarks/memory.py: inception_bytes_per_image)
# Parameters and activation bytes per image of each architecture (normal prior; priors add < 5 %),
# from parameter_count / activation_bytes_per_image / inference_bytes_per_image (tests/test_memory.py).
ARCHITECTURE_SIZES = {
    "mnist": {"params": 1120502, "train_bytes_per_image": 2422378, "inference_bytes_per_image": 32768, "image_bytes": 784},
    "mnist_code": {"params": 864290, "train_bytes_per_image": 2622082, "inference_bytes_per_image": 524288, "image_bytes": 784},
    "celeba": {"params": 20852804, "train_bytes_per_image": 119781826, "inference_bytes_per_image": 16777216, "image_bytes": 3 * 128 * 128},
}
# Keep the training set on the GPU (training.data_on_device: auto) when it takes at most this
# share of one GPU: MNIST's 47 MB always, CelebA's ~9 GB not on an 80 GB GPU. Off, each step copies
# its minibatch (CelebA: 256 x 49 KB = 12.6 MB, ~1 ms over PCIe, against ~30 ms of compute).
DATA_ON_DEVICE_SHARE = 1 / 16
CELEBA_TRAIN_IMAGES = 182_599  # 202,599 aligned images less the 20,000 test images (data.celeba.test_size)


def loglik_chunk(architecture: str, device_type: str) -> int:
    """Decoder evaluations per importance-sampling pass for this architecture on ``cpu`` or ``cuda``
    (memory only: the estimates do not depend on it, pipeline.likelihood)."""
    per_image = ARCHITECTURE_SIZES[architecture]["inference_bytes_per_image"]
    return max(1, min(LOGLIK_CHUNK[device_type], LOGLIK_PASS_BYTES[device_type] // per_image))


def _settings_for(config: dict, dataset: str, method: str | None) -> dict:
    from pipeline.config import run_settings

    methods = config["run"]["methods"]
    return run_settings(config, dataset, method or methods[0], config["run"]["seeds"][0])


def parameter_count(settings: dict) -> int:
    from pipeline.models import build_vae

    return sum(p.numel() for p in build_vae(settings).parameters())


def activation_bytes_per_image(settings: dict, batch: int = 2) -> int:
    """Bytes autograd saves for backward in one training step (VAE.terms), per image: counted with
    saved-tensor hooks over a batch of ``batch`` images, each storage once."""
    import torch

    from pipeline.models import build_vae

    torch.manual_seed(0)
    vae = build_vae(settings).train()
    arch = ARCHITECTURE_SIZES[settings["architecture"]]
    side = int(round((arch["image_bytes"] / (3 if settings["architecture"] == "celeba" else 1)) ** 0.5))
    x = torch.rand(batch, 3 if settings["architecture"] == "celeba" else 1, side, side)
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        (-vae.terms(x)["elbo"].mean()).backward()
    return int(sum(seen.values()) / batch)


def inference_bytes_per_image(settings: dict, batch: int = 2) -> int:
    """The most a forward without grad holds at once, per image: the largest (input + output) of
    any layer of the encoder and decoder (they are chains of layers; each activation is freed once
    the next layer has consumed it)."""
    import torch

    from pipeline.models import build_vae

    vae = build_vae(settings).eval()
    largest = [0]

    def hook(module, inputs, output):
        size = sum(t.numel() * t.element_size() for t in (*inputs, output) if torch.is_tensor(t))
        largest[0] = max(largest[0], size)

    leaves = [m for m in vae.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    channels = 3 if settings["architecture"] == "celeba" else 1
    side = int(round((ARCHITECTURE_SIZES[settings["architecture"]]["image_bytes"] / channels) ** 0.5))
    with torch.no_grad():
        mean, _ = vae.encode(torch.rand(batch, channels, side, side))
        vae.decode(mean)
    for handle in handles:
        handle.remove()
    return int(largest[0] / batch)


def train_images(config: dict, dataset: str) -> int:
    """Training images of a dataset's runs, from the config alone (train_limit applies)."""
    from pipeline.data import expected_split_sizes

    n = expected_split_sizes(dataset, config["data"])["train"] or CELEBA_TRAIN_IMAGES
    limit = config["datasets"][dataset].get("train_limit")
    return min(n, limit) if limit else n


def test_images(config: dict, dataset: str) -> int:
    from pipeline.data import expected_split_sizes

    return expected_split_sizes(dataset, config["data"])["test"]


def data_on_device(config: dict, dataset: str, gpu_mb: float | None) -> bool:
    """training.data_on_device resolved: true/false as given; auto keeps the uint8 training set
    on the GPU when it takes at most DATA_ON_DEVICE_SHARE of one GPU (``gpu_mb``: its memory;
    None, not known here: assume an 80 GB GPU)."""
    choice = config["training"]["data_on_device"]
    if choice != "auto":
        return bool(choice)
    arch = ARCHITECTURE_SIZES[config["datasets"][dataset]["architecture"]]
    return train_images(config, dataset) * arch["image_bytes"] / MB <= DATA_ON_DEVICE_SHARE * (gpu_mb or 80 * 1024)


def job_sizes(rule: str, config: dict, dataset: str) -> dict:
    """The sizes that grow a rule's memory, from the config (what benchmarks/memory.py records)."""
    cls = RULE_CLASS[rule]
    if cls == "train":
        return {"n_train": train_images(config, dataset)}
    if cls == "evaluate":
        limit = config["datasets"][dataset].get("test_limit")
        return {"n_test": min(limit, test_images(config, dataset)) if limit else test_images(config, dataset)}
    if cls == "encode":
        return {"n_train": train_images(config, dataset), "n_test": test_images(config, dataset)}
    if cls == "sample":
        return {"n_samples": config["sampling"]["n_samples"]}
    if cls == "fid":  # the reference job reads only the reference images; the others add n_samples of their own
        reference = {"n_reference": config["fid"]["n_reference"]}
        return reference if rule == "fid_reference" else {**reference, "n_samples": config["fid"]["n_samples"]}
    if cls == "interpolation":
        return {"n_test": config["interpolation"]["test_images"]}
    return {}


def job_memory(rule: str, config: dict, dataset: str, method: str | None = None, sizes: dict | None = None,
               data_on_device: bool | None = None, device: str | None = None) -> dict:
    """``{"mem_mb": ..., "gpu_mem_mb": ...}`` one job of ``rule`` needs (module docstring): from the
    dataset's architecture and batch size, the job's sizes (``job_sizes`` unless given; ``batch``
    overrides the config's), whether the training set lives on the GPU, and its device (cpu: the
    activations are in host memory and no GPU memory is needed)."""
    cls = RULE_CLASS[rule]
    block = config["datasets"][dataset]
    arch_name = block["architecture"]
    arch = ARCHITECTURE_SIZES[arch_name]
    sizes = {**job_sizes(rule, config, dataset), **(sizes or {})}
    image = arch["image_bytes"]
    d_z = block["d_z"]
    on_cpu = device == "cpu" or (device is None and _device_of(rule, config) == "cpu")
    # What grows with the job's sizes (the dataset's own pages are shared through the page
    # cache and set aside once by machine_budget).
    grows = {
        "train": 8 * sizes.get("n_train", 0),  # the epoch's permutation (int64)
        "evaluate": (64 + 8 * d_z) * sizes.get("n_test", 0),  # per-image metrics, posterior means
        "encode": 4 * 4 * d_z * (sizes.get("n_train", 0) + sizes.get("n_test", 0)),  # means and stds, float32, and the file's copy
        "sample": 2 * (image + 4 * d_z) * sizes.get("n_samples", 0),  # images and z, and the file's in-memory copy
        "fid": (image + FID_FEATURE_BYTES) * (2 * sizes.get("n_samples", 0) + sizes.get("n_reference", 0)) + 4 * image * sizes.get("n_samples", 0),
        "figure": 0,
        "interpolation": 4 * image * sizes.get("n_test", 0),  # test images as float32
    }[cls]
    if cls == "train":
        batch = block["batch_size"] + (_pseudo_inputs(config, method) if method else 0)
        per_image, per_param = arch["train_bytes_per_image"], TRAIN_BYTES_PER_PARAM
    elif cls == "fid":
        batch, per_image, per_param = config["fid"]["batch_size"], max(INCEPTION_BYTES_PER_IMAGE, arch["inference_bytes_per_image"]), INFERENCE_BYTES_PER_PARAM
    else:  # inference; the shortest likely path is optimised on the prior's density in latent space, then decoded
        batch = max(config["evaluation"]["batch_size"], config["sampling"]["batch_size"])
        if cls == "evaluate" and config["evaluation"].get("loglik_samples"):
            batch = max(batch, loglik_chunk(arch_name, "cpu" if on_cpu else "cuda"))  # importance sampling decodes a chunk at once
        per_image, per_param = arch["inference_bytes_per_image"], INFERENCE_BYTES_PER_PARAM
    batch = sizes.get("batch", batch)
    params = arch["params"] + (INCEPTION_PARAMS if cls == "fid" else 0)
    activations_mb = batch * per_image / MB
    if on_cpu:  # parameters, optimiser state and activations live in host memory
        if cls != "train":  # CPU convolutions' unfolded-input buffers (cuDNN's workspace on a GPU: GPU_ALLOCATOR_FACTOR)
            activations_mb *= CPU_INFERENCE_WORKSPACE
        host = HOST_BASE_MB[cls] + params * per_param / MB + activations_mb + grows / MB
        return {"mem_mb": math.ceil(HOST_MARGIN * host), "gpu_mem_mb": 0}
    host = HOST_BASE_MB[cls] + CUDA_HOST_MB + params * 4 / MB + grows / MB  # a CPU copy of the weights while loading
    on_device = cls == "train" and (data_on_device if data_on_device is not None else _data_on_device_default(config, dataset))
    data_mb = sizes.get("n_train", 0) * image / MB if on_device else 0
    gpu = CUDA_CONTEXT_MB + params * per_param / MB + GPU_ALLOCATOR_FACTOR * activations_mb + data_mb
    return {"mem_mb": math.ceil(HOST_MARGIN * host), "gpu_mem_mb": math.ceil(gpu)}


def _pseudo_inputs(config: dict, method: str) -> int:
    """VampPrior's pseudo-inputs pass through the encoder with every batch (images of their own)."""
    block = config["methods"].get(method, {})
    return int(block.get("options", {}).get("n_components", 0)) if block.get("prior") == "vampprior" else 0


def _device_of(rule: str, config: dict) -> str:
    return config["fid"]["device"] if RULE_CLASS[rule] == "fid" else config["training"]["device"]


def _data_on_device_default(config: dict, dataset: str) -> bool:
    return data_on_device(config, dataset, gpu_memory_mb())


# ---- the machine's budgets -------------------------------------------------------------------
HOST_RESERVE_MB = 2048  # the OS, Snakemake itself
HOST_MEM_ENV, GPU_MEM_ENV = "LADDER_HOST_MEM_MB", "LADDER_GPU_MEM_MB"


def gpu_memory_mb() -> int | None:
    """One GPU's memory (the smallest of those visible; LADDER_GPU_MEM_MB overrides), None without CUDA."""
    if os.environ.get(GPU_MEM_ENV):
        return int(os.environ[GPU_MEM_ENV])
    import torch

    if not torch.cuda.is_available():
        return None
    return min(torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())) // MB


def gpu_count() -> int:
    if os.environ.get(GPU_MEM_ENV):
        return int(os.environ.get("LADDER_GPU_COUNT", "1"))
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def host_memory_mb() -> int:
    if os.environ.get(HOST_MEM_ENV):
        return int(os.environ[HOST_MEM_ENV])
    with open("/proc/meminfo") as handle:
        total_kb = next(int(line.split()[1]) for line in handle if line.startswith("MemTotal"))
    return total_kb // 1024


def shared_data_mb(config: dict) -> int:
    """Page cache the run's processed datasets take, once each (their train and test images)."""
    total = 0
    for dataset in config["run"]["datasets"]:
        image = ARCHITECTURE_SIZES[config["datasets"][dataset]["architecture"]]["image_bytes"]
        total += image * (train_images(config, dataset) + test_images(config, dataset))
    return math.ceil(total / MB)


@dataclass
class Budget:
    mem_mb: int  # host memory for jobs: total less HOST_RESERVE_MB and the shared datasets
    gpu_mem_mb: int  # summed over the GPUs (0: none)
    gpu_mb: int  # one GPU's memory (0: none)
    gpus: int

    def resources(self) -> str:
        """The --resources arguments Snakemake is given (docs/gpu.md)."""
        return f"mem_mb={self.mem_mb} gpu_mem_mb={self.gpu_mem_mb}"


def machine_budget(config: dict) -> Budget:
    gpu_mb = gpu_memory_mb() or 0
    gpus = gpu_count() if gpu_mb else 0
    return Budget(mem_mb=max(0, host_memory_mb() - HOST_RESERVE_MB - shared_data_mb(config)), gpu_mem_mb=gpu_mb * gpus, gpu_mb=gpu_mb, gpus=gpus)


class DoesNotFit(Exception):
    pass


def check_fits(needs: dict[str, dict], budget: Budget) -> None:
    """Raise DoesNotFit naming every job kind that needs more than the machine has: more host
    memory than the budget, or more GPU memory than one GPU (a job runs on one)."""
    problems = []
    for job, need in needs.items():
        if need["mem_mb"] > budget.mem_mb:
            problems.append(f"{job} needs {need['mem_mb']:,} MB of host memory; this machine has {budget.mem_mb:,} MB for jobs "
                            f"(host memory less {HOST_RESERVE_MB} MB reserved and the datasets' shared pages)")
        if need["gpu_mem_mb"] and budget.gpu_mb and need["gpu_mem_mb"] > budget.gpu_mb:
            problems.append(f"{job} needs {need['gpu_mem_mb']:,} MB of GPU memory; this machine's GPU has {budget.gpu_mb:,} MB")
    if problems:
        raise DoesNotFit("\n".join(problems))
