"""K contexts per face from the ``exemplar`` method: FID of each sample set and of their union,
and diversity (issue 28).

    python scripts/exemplar_samples.py --root /abs/lfw_prepared --split test --k 4 \
        --train-root /abs/lfw_prepared --cache /abs/cache [--top 8] [--limit 150] [--threads 2]

FID: each sample set (N outputs) and the union of the K sets (K·N outputs) against the N
originals, with the evaluation's Inception extractor and the harness's pixel handling
(quantised to 8 bits, invalid pixels from the original). Diversity: mean over faces and pairs
of samples of the L1 distance of context pixels (mask 0, valid; [0, 1] units) and of the L2
distance of Inception features.
"""

from __future__ import annotations

import argparse
import itertools
import json

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--train-root", required=True)
    p.add_argument("--cache", default=None)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--top", type=int, default=1, help="draw the K among the best TOP")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--set", nargs="*", default=[], help="extra Exemplar args as key=json")
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    from torch.utils.data import DataLoader, Subset

    from facectx.data.datasets import PreparedFaces
    from facectx.evaluation.exemplar import Exemplar
    from facectx.metrics.fid import frechet_distance
    from facectx.pixels import quantize
    from facectx.pretrained import load

    extra = {k: json.loads(v) for k, v in (s.split("=", 1) for s in a.set)}
    method = Exemplar(train_root=a.train_root, cache_dir=a.cache, top=a.top, seed=a.seed, **extra)
    faces = PreparedFaces(a.root, split=a.split or None)
    method.setup(faces.size, torch.device("cpu"))
    data = faces if a.limit is None else Subset(faces, range(min(a.limit, len(faces))))
    inception = load("inception-fid", variant="auto")

    real, fake = [], [[] for _ in range(a.k)]
    l1, feat_d = [], []
    with torch.inference_mode():
        for b in DataLoader(data, batch_size=a.batch_size, shuffle=False):
            b["person_name"] = [faces.rows[int(i)].get("person", "") for i in b["index"]]
            outs, _ = method.samples(b, a.k)
            valid, image = b["valid"], b["image"]
            ctx = ((b["mask"] < 0.5) & (valid > 0.5)).float()
            real.append(inception(image).double())
            feats = []
            for c in range(a.k):
                out = quantize(outs[:, c].float())
                out = valid * out + (1 - valid) * image
                outs[:, c] = out
                feats.append(inception(out).double())
                fake[c].append(feats[-1])
            for i, j in itertools.combinations(range(a.k), 2):
                diff = (outs[:, i] - outs[:, j]).abs().mean(1, keepdim=True) / 2
                l1.append((diff * ctx).flatten(1).sum(1) / ctx.flatten(1).sum(1).clamp_min(1))
                feat_d.append((feats[i] - feats[j]).norm(dim=1))
    real = torch.cat(real)
    sets = [torch.cat(f) for f in fake]
    per = [frechet_distance(real, s) for s in sets]
    report = {
        "n": len(real),
        "k": a.k,
        "top": a.top,
        "fid_per_sample": [round(x, 2) for x in per],
        "fid_union": round(frechet_distance(real, torch.cat(sets)), 2),
        "context_l1_pairwise": round(float(torch.cat(l1).mean()), 4),
        "inception_l2_pairwise": round(float(torch.cat(feat_d).mean()), 3),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
