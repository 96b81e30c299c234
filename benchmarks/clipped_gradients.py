"""How much of the autoencoder's gradient element-wise clipping at 1 changes, during training.

    python benchmarks/clipped_gradients.py --config config/reference_gpu.yaml --steps 300 --every 50

Trains the normal-prior VAE with the config's settings and the committed reference run's clipping
at 1 (reconstruction_gap.BASELINE) and, every --every steps, reports the fraction of gradient elements with |g| > 1 (the ones
clipping rewrites) and the cosine between the clipped and the unclipped gradient. Evidence for
README "The reconstruction gap and its cause".
"""

from __future__ import annotations

import argparse
import json

import torch

from pipeline.artefacts import load_split, to_float
from pipeline.config import deep_merge, load_config, run_settings
from pipeline.models import build_vae
from pipeline.training import _clip, make_optimisers
from reconstruction_gap import BASELINE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/reference_gpu.yaml")
    parser.add_argument("--data", default="data/processed/fashion_mnist.h5")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    settings = run_settings(deep_merge(load_config(args.config), BASELINE), args.dataset, "normal", 0)
    limit = settings["grad_clip_value"]
    vae = build_vae(settings).train()
    opt, _ = make_optimisers(vae, settings)
    images, _ = load_split(args.data, "train")
    params = [p for group in opt.param_groups for p in group["params"]]
    for step in range(args.steps + 1):
        x = to_float(images[torch.randint(len(images), (settings["batch_size"],))])
        opt.zero_grad(set_to_none=True)
        terms = vae.terms(x)
        (-terms["elbo"].mean()).backward()
        if step % args.every == 0:
            grad = torch.cat([p.grad.flatten() for p in params])
            clipped = grad.clamp(-limit, limit)
            print(json.dumps({"step": step, "mae": round(terms["mae"].item(), 4), "fraction_above_1": round((grad.abs() > limit).float().mean().item(), 4),
                              "cosine_clipped_vs_raw": round(torch.nn.functional.cosine_similarity(clipped, grad, dim=0).item(), 4),
                              "gradient_norm": round(grad.norm().item(), 1)}), flush=True)
        _clip(opt, limit)
        opt.step()


if __name__ == "__main__":
    main()
