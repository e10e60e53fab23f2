"""Encoding documents on a Ray cluster while one process writes one index.

Why: window encoding is nearly all of indexing's time and parallelises by
document, while the index (tables, FAISS, BM25) must be written by one process
to stay atomic. :class:`RayLandmarkEncoder` wraps a local encoder and keeps its
protocol: tokenising, landmarks, queries and the index stay in the driver;
``encode_documents`` splits each batch of documents into shards of similar
length and sends them to Ray actors that each hold the same encoder (built by
the same registry backend from the same settings, checked by identity when they
start). Results come back in order, so the index written is the one a single
process would write, with vectors equal up to float rounding (batches pad
differently), and its manifest records the local encoder's backend and settings.

Ray is optional (``pip install 'hybridctx[ray]'``, ~240 MB) and imported only
when a :class:`RayLandmarkEncoder` is built.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping, Sequence

import numpy as np

from hybridctx.embeddings.protocol import DocumentInput
from hybridctx.errors import ConfigError, MissingDependencyError

__all__ = ["RayLandmarkEncoder", "import_ray", "ray_encoder_for"]

logger = logging.getLogger(__name__)


def import_ray() -> Any:
    """Imports ray or raises :class:`MissingDependencyError` naming the extra."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError("ray", "ray", "encoding on a Ray cluster") from exc
    return ray


class _EncoderWorker:
    """What each Ray actor runs: one encoder, loaded once (made remote at run time), by the
    backend that built the driver's encoder."""

    def __init__(self, settings: dict[str, Any], backend: str = "transformers") -> None:
        from hybridctx.embeddings.registry import load_encoder

        self._encoder = load_encoder(settings, backend=backend)

    def identity(self) -> dict[str, Any]:
        return dict(self._encoder.identity)

    def encode(self, documents: list[DocumentInput]) -> list[np.ndarray]:
        return self._encoder.encode_documents(documents, show_progress=False)


class RayLandmarkEncoder:
    """A landmark encoder whose ``encode_documents`` runs on Ray actors.

    Args:
        encoder: the local encoder (a :class:`WindowedLandmarkEncoder`); it
            tokenises, encodes queries and defines the identity.
        address: a Ray cluster address (``"auto"``, ``"ray://host:10001"``,
            ``"host:6379"``); ``None`` starts a local cluster (or reuses the
            one this process already joined).
        num_actors: encoder actors (default: one per GPU when the cluster has
            GPUs, else one per ``cpus_per_actor`` CPUs).
        cpus_per_actor: CPUs reserved by each actor (its torch threads).
        num_cpus: CPUs of a local cluster (default: this machine's).

    Raises:
        MissingDependencyError: ray is not installed.
        ConfigError: the encoder has no ``config``, or an actor's encoder differs.
    """

    def __init__(
        self,
        encoder: Any,
        *,
        address: str | None = None,
        num_actors: int | None = None,
        cpus_per_actor: float = 1.0,
        num_cpus: int | None = None,
    ) -> None:
        ray = import_ray()
        config = getattr(encoder, "config", None)
        if config is None or not hasattr(config, "to_dict"):
            raise ConfigError("RayLandmarkEncoder needs an encoder with an EncoderConfig (a WindowedLandmarkEncoder)")
        self._local = encoder
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            # Ray reports usage to its authors unless told not to; say no before it starts.
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            if address:
                ray.init(address=address, logging_level=logging.WARNING)
            else:
                ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                         logging_level=logging.WARNING)
            self._started = True
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        options: dict[str, Any] = {"num_cpus": cpus_per_actor}
        if gpus:
            options["num_gpus"] = 1
        n = num_actors or (gpus if gpus else max(1, int(resources.get("CPU", 1) // cpus_per_actor)))
        settings = config.to_dict()
        if not gpus and str(settings.get("device", "auto")).startswith("cuda"):
            raise ConfigError("device 'cuda' was asked for but the Ray cluster has no GPU; use device 'auto' or 'cpu'")
        from hybridctx.embeddings.registry import adopt_record, encoder_record

        backend = encoder_record(encoder).get("backend", "transformers")
        worker = ray.remote(_EncoderWorker)
        self._actors = [worker.options(**options).remote(settings, backend) for _ in range(n)]
        wanted = dict(encoder.identity)
        for got in ray.get([a.identity.remote() for a in self._actors]):
            if got != wanted:
                differing = sorted(k for k in set(got) | set(wanted) if got.get(k) != wanted.get(k))
                raise ConfigError(f"a Ray worker's encoder differs from this process's in {', '.join(differing)}: "
                                  f"{ {k: (wanted.get(k), got.get(k)) for k in differing} }")
        adopt_record(self, encoder)  # an index built on Ray reopens with the local encoder's backend
        logger.info("encoding on %d Ray actor(s) (%s per actor; cluster %s)", n, options, dict(resources))

    # -- the encoder protocol (everything but documents stays local) ----
    @property
    def dim(self) -> int:
        return int(self._local.dim)

    @property
    def identity(self) -> Mapping[str, Any]:
        return self._local.identity

    @property
    def window(self) -> int:
        return int(self._local.window)

    @property
    def overlap(self) -> int:
        return int(self._local.overlap)

    @property
    def num_actors(self) -> int:
        return len(self._actors)

    def __getattr__(self, name: str) -> Any:
        # Why: this stands in for the local encoder everywhere (config, spec,
        # token_offsets, readable_ratio, ...); only document encoding differs.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._local, name)

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Encoded locally: a query is too small to be worth a round trip."""
        return self._local.encode_queries(queries)

    def encode_documents(
        self, documents: Sequence[DocumentInput], *, show_progress: bool | None = None
    ) -> list[np.ndarray]:
        """Encodes ``(text, sentences)`` pairs on the actors; same result as the local encoder.

        Returns:
            Per document, ``(n_sentences, dim) float32``, L2-normalised, in input order.
        """
        docs = [(text, [tuple(map(int, s)) for s in sentences]) for text, sentences in documents]
        if not docs:
            return []
        shards = _balanced_shards([len(text) for text, _ in docs], len(self._actors))
        futures = [actor.encode.remote([docs[i] for i in shard])
                   for actor, shard in zip(self._actors, shards) if shard]
        out: list[np.ndarray | None] = [None] * len(docs)
        for shard, vectors in zip([s for s in shards if s], self._ray.get(futures)):
            for i, vec in zip(shard, vectors):
                out[i] = np.asarray(vec, dtype=np.float32)
        return out  # type: ignore[return-value]

    # -- life cycle -------------------------------------------------------
    def close(self) -> None:
        """Stops the actors, and the local cluster when this object started it."""
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
            self._started = False

    def __enter__(self) -> RayLandmarkEncoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _balanced_shards(sizes: Sequence[int], n: int) -> list[list[int]]:
    """Splits item indices into ``n`` shards of similar total size (largest first, greedy).

    Each shard lists its items in input order.
    """
    shards: list[list[int]] = [[] for _ in range(max(1, n))]
    loads = [0] * len(shards)
    for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        j = loads.index(min(loads))
        shards[j].append(i)
        loads[j] += sizes[i]
    return [sorted(s) for s in shards]


def ray_encoder_for(
    index_dir: Any, settings: Mapping[str, Any], *, address: str | None = None
) -> RayLandmarkEncoder:
    """The encoder ``hybridctx index --ray`` uses: the one the index needs, on Ray.

    Args:
        index_dir: the index directory (an existing index keeps its own encoder).
        settings: ``EncoderConfig`` fields from the command line.
        address: the Ray cluster address; ``None`` or ``""`` for a local cluster.
    """
    from hybridctx.facade import _encoder_for  # the same choice HybridContext.build makes

    return RayLandmarkEncoder(_encoder_for(index_dir, dict(settings)), address=address or None)
