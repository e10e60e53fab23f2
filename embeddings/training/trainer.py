"""Fine-tuning a landmark encoder through the windows and pooling that indexing uses.

Why this shape: a landmark vector is only as good as the reading that made
it, so the trainer reads each training document exactly as indexing does —
the same sentence segmentation (:func:`hybridctx.ingest.landmarks.landmarks_for`),
the same window plan and the same pooling (:mod:`hybridctx.embeddings.pooling`)
of the same :class:`~hybridctx.embeddings.windowed.WindowedLandmarkEncoder`
— with gradients on. A batch is a few queries and the whole windows that hold
their gold runs plus another window of the same document; every landmark of
those windows is a candidate (:mod:`.objective`). Validation is the project's
own evaluation loop (dense-only and hybrid evidence recall) after each epoch,
on documents never trained on; the best epoch is kept, training stops when it
stops improving, when the loss turns NaN, or when it diverges.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from hybridctx.embeddings.pooling import owned_sentences, pool_window, window_positions, window_sequence
from hybridctx.embeddings.training import TrainingError
from hybridctx.embeddings.training.data import Example
from hybridctx.embeddings.training.objective import gold_runs, info_nce, position_weights
from hybridctx.errors import ConfigError, InputError

__all__ = ["TrainConfig", "TrainResult", "Trainer", "eval_set_for"]

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint"
_BASE_FILES_SKIPPED = {"model.safetensors", "pytorch_model.bin", "README.md", ".gitattributes", "data_config.json",
                       "config.json", "train_script.py"}


@dataclass(frozen=True)
class TrainConfig:
    """How a landmark encoder is trained (every field goes into the model card).

    Attributes:
        base: the model to start from (as ``--encoder``).
        window: the window it is trained on and will serve (tokens with
            specials; ``None``: the base model's).
        overlap: window overlap (``None``: the encoder's default).
        pooling: ``mean`` (encoders) or ``landmark`` (a state at an inserted
            EOS/SEP token, for decoders).
        alpha: position-aware target ``w_i ∝ exp(α·i)``; 0 = plain.
        temperature: InfoNCE temperature.
        lr: AdamW learning rate (linear warm-up then decay).
        batch_queries: queries per step.
        max_windows: most windows read per step (bounds memory and time).
        epochs: most epochs.
        steps_per_epoch: steps between validations (``None``: one pass over the examples).
        freeze_layers: transformer layers (from the bottom, with the
            embeddings) kept frozen; 0 trains everything.
        val_budgets: token budgets validation recall is measured at.
        patience: epochs without improvement before stopping.
        seed: seeds the data order, sampling and torch.
        device: ``auto``, ``cpu`` or ``cuda``; CUDA trains in bf16/fp16 autocast.
        warmup: share of the steps spent warming up.
        max_grad_norm: gradient clipping.
        labelled_share: share of each batch drawn from labelled examples
            (questions, LLM questions) when there are also self-supervised
            pairs; ``None`` draws from all examples alike, so thousands of
            inverse-cloze pairs outnumber a few hundred labels.
    """

    base: str = "all-MiniLM-L6-v2"
    window: int | None = None
    overlap: int | None = None
    pooling: str = "mean"
    alpha: float = 0.5
    temperature: float = 0.05
    lr: float = 3e-5
    batch_queries: int = 8
    max_windows: int = 12
    epochs: int = 3
    steps_per_epoch: int | None = None
    freeze_layers: int = 0
    val_budgets: tuple[int, ...] = (1024,)
    patience: int = 2
    seed: int = 0
    device: str = "auto"
    warmup: float = 0.1
    max_grad_norm: float = 1.0
    labelled_share: float | None = None

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ConfigError(f"temperature {self.temperature} must be > 0")
        if self.lr <= 0:
            raise ConfigError(f"learning rate {self.lr} must be > 0")
        if self.batch_queries < 1 or self.max_windows < 1 or self.epochs < 1:
            raise ConfigError("batch size, windows per step and epochs must be at least 1")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ConfigError(f"steps per epoch {self.steps_per_epoch} must be at least 1")
        if self.freeze_layers < 0:
            raise ConfigError(f"freeze_layers {self.freeze_layers} must be >= 0")
        if self.labelled_share is not None and not 0.0 <= self.labelled_share <= 1.0:
            raise ConfigError(f"labelled share {self.labelled_share} must be between 0 and 1")


@dataclass(frozen=True)
class TrainResult:
    """What a run did: where the model is, and the validation history."""

    out_dir: str
    best_epoch: int
    best_score: float
    history: tuple[dict[str, Any], ...]
    steps: int
    seconds: float
    tokens_per_second: float
    stopped: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Doc:
    doc_id: str
    text: str
    ids: np.ndarray
    ranges: np.ndarray
    windows: np.ndarray
    assignment: np.ndarray
    owners: list[np.ndarray]
    sentences: np.ndarray  # char ranges


@dataclass
class _Item:
    query: str
    gold: list[tuple[str, int]]  # (doc_id, sentence)
    runs: list[tuple[str, list[int]]] = field(default_factory=list)
    labelled: bool = True


def eval_set_for(name: str, docs: Mapping[str, str], examples: Sequence[Example]) -> Any:
    """An :class:`~hybridctx.eval.datasets.EvalSet` of validation examples.

    Examples whose gold is whole documents in several documents (hotpotqa)
    are scored by gold paragraphs over the whole set; the others by evidence
    ranges in their own document.
    """
    from hybridctx.eval.datasets import EvalSet, QAItem

    corpus = any(len(e.doc_ids) > 1 for e in examples)
    items = []
    for k, e in enumerate(examples):
        first = e.doc_ids[0]
        if corpus:
            items.append(QAItem(f"{name}-{k}", first, e.query, evidence_doc_ids=e.doc_ids, kind="docs"))
        else:
            items.append(QAItem(f"{name}-{k}", first, e.query,
                                evidence_offsets=tuple((s, t) for _, s, t in e.evidence), kind="evidence"))
    needed = set(docs) if corpus else {d for e in examples for d in e.doc_ids}
    return EvalSet(name, {d: t for d, t in docs.items() if d in needed}, tuple(items),
                   scope="corpus" if corpus else "doc")


class _Versioned:
    """The encoder under training, with an identity that changes with its weights.

    Why: the evaluation harness reuses an index built for the same encoder
    identity and corpus; after a training epoch the same identity would
    return the previous epoch's vectors.
    """

    def __init__(self, encoder: Any) -> None:
        self._inner = encoder
        self.version = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def identity(self) -> Mapping[str, Any]:
        return {**self._inner.identity, "training_step": self.version}


class Trainer:
    """Train one landmark encoder.

    Args:
        config: the hyper-parameters.
        train_docs: ``doc_id -> text`` of every document an example points at.
        examples: training examples (their documents must be in ``train_docs``).
        val_sets: ``name -> EvalSet`` validation sets (documents disjoint from training).
        out_dir: the model directory written (and its ``checkpoint/``).
        card_info: data sources, licences and the command, for the model card.
        show_progress: tqdm bars (``None``: on a terminal).

    Raises:
        InputError: no examples, an example pointing at an unknown document,
            or a validation document that is also trained on.
    """

    def __init__(
        self,
        config: TrainConfig,
        train_docs: Mapping[str, str],
        examples: Sequence[Example],
        val_sets: Mapping[str, Any],
        out_dir: str | Path,
        *,
        card_info: Mapping[str, Any] | None = None,
        show_progress: bool | None = None,
    ) -> None:
        if not examples:
            raise InputError("no training examples: give --qa folders with labelled questions or --docs to "
                             "draw self-supervised pairs from")
        for e in examples:
            for d in e.doc_ids:
                if d not in train_docs:
                    raise InputError(f"training example {e.query[:40]!r} points at unknown document {d!r}")
        for name, s in val_sets.items():
            if not s.questions:
                raise InputError(f"validation set {name!r} is empty; give more documents or a larger --val-fraction")
            shared = set(s.docs) & {d for e in examples for d in e.doc_ids}
            if shared:
                raise InputError(f"validation set {name!r} shares {len(shared)} document(s) with training, "
                                 f"e.g. {sorted(shared)[0]!r}; splits must be document-disjoint")
        self.config = config
        self.out_dir = Path(out_dir)
        self.card_info = dict(card_info or {})
        self.show_progress = show_progress
        self.val_sets = dict(val_sets)
        self._train_docs = dict(train_docs)
        self._examples = list(examples)
        self._encoder: Any = None
        self._docs: dict[str, _Doc] = {}
        self._items: list[_Item] = []
        self.tokens_seen = 0

    # -- setup -------------------------------------------------------------
    def _setup(self) -> None:
        import torch

        from hybridctx.embeddings.config import EncoderConfig
        from hybridctx.embeddings.registry import load_encoder

        cfg = self.config
        random.seed(cfg.seed)
        np.random.seed(cfg.seed % (2**32))
        torch.manual_seed(cfg.seed)
        values = dict(model=cfg.base, window=cfg.window, overlap=cfg.overlap, pooling=cfg.pooling,
                      device=cfg.device, fp16=False, query_runtime="torch")
        if "document_runtime" in EncoderConfig.__dataclass_fields__:
            values["document_runtime"] = "torch"  # no ONNX export of every epoch's weights
        enc_cfg = EncoderConfig(**values)
        # The windowed ("transformers") backend: the trainer reads its torch model and tokenizer below.
        encoder: Any = load_encoder(enc_cfg, backend="transformers")
        encoder._load()  # noqa: SLF001 - the trainer reads documents as this encoder does
        torch.set_grad_enabled(True)  # the encoder switches gradients off for serving
        self._encoder = encoder
        self.model = encoder._model  # noqa: SLF001
        self.tokenizer = encoder._tokenizer  # noqa: SLF001
        self.device = encoder.device
        self.model.eval()  # no dropout: training reads what serving reads
        self._freeze(cfg.freeze_layers)
        needed = {d for e in self._examples for d in e.doc_ids}
        for doc_id in sorted(needed):
            self._docs[doc_id] = self._read(doc_id, self._train_docs[doc_id])
        self._items = [self._item(e) for e in self._examples]
        self._items = [i for i in self._items if i.gold]
        if not self._items:
            raise InputError("no training example has evidence that covers a landmark")

    def _freeze(self, layers: int) -> None:
        if layers <= 0:
            return
        model = self.model
        blocks = _layer_list(model)
        if blocks is None or layers > len(blocks):
            raise ConfigError(f"cannot freeze {layers} layers of {self.config.base}: it has "
                              f"{len(blocks) if blocks is not None else 'no recognised'} layers")
        for p in model.get_input_embeddings().parameters():
            p.requires_grad_(False)
        emb = getattr(model, "embeddings", None)
        if emb is not None:
            for p in emb.parameters():
                p.requires_grad_(False)
        for block in list(blocks)[:layers]:
            for p in block.parameters():
                p.requires_grad_(False)

    def _read(self, doc_id: str, text: str) -> _Doc:
        from hybridctx.datatypes import Document
        from hybridctx.ingest.indexing import _max_landmark_tokens
        from hybridctx.ingest.landmarks import landmarks_for

        enc = self._encoder
        offsets, _ = enc.token_offsets(text)
        marks = landmarks_for(Document(doc_id, text), offsets, _max_landmark_tokens(enc))
        prepared = enc._prepare(text, marks.sentences)  # noqa: SLF001
        plan = prepared["plan"]
        return _Doc(doc_id, text, prepared["ids"], prepared["ranges"], plan.windows, plan.assignment,
                    owned_sentences(plan.assignment, len(plan.windows)), marks.sentences)

    def _item(self, example: Example) -> _Item:
        gold: list[tuple[str, int]] = []
        runs: list[tuple[str, list[int]]] = []
        for doc_id, start, end in example.evidence:
            sents = self._docs[doc_id].sentences
            hit = np.nonzero((sents[:, 0] < end) & (sents[:, 1] > start))[0].tolist()
            for run in gold_runs(hit):
                runs.append((doc_id, run))
                gold.extend((doc_id, s) for s in run)
        merged: dict[str, set[int]] = {}
        for doc_id, run in runs:
            merged.setdefault(doc_id, set()).update(run)
        runs = [(d, r) for d, s in merged.items() for r in gold_runs(sorted(s))]
        return _Item(example.query, gold, runs, labelled=example.source != "ict")

    # -- one step ----------------------------------------------------------
    def _batch_windows(self, items: Sequence[_Item], rng: random.Random) -> tuple[list[_Item], list[tuple[str, int]]]:
        windows: dict[tuple[str, int], None] = {}
        kept: list[_Item] = []
        for item in items:
            need = {(d, int(self._docs[d].assignment[s])) for d, s in item.gold}
            first = item.gold[-1][0]
            doc = self._docs[first]
            others = [w for w in range(len(doc.windows)) if (first, w) not in need and len(doc.owners[w])]
            if others:
                need.add((first, rng.choice(others)))  # a hard negative: the same document elsewhere
            fresh = [w for w in sorted(need) if w not in windows]
            if kept and len(windows) + len(fresh) > self.config.max_windows:
                continue
            kept.append(item)
            windows.update(dict.fromkeys(fresh))
        return kept, list(windows)

    def _encode_batch(self, items: Sequence[_Item], windows: Sequence[tuple[str, int]]) -> tuple[Any, Any, Any]:
        import torch

        enc = self._encoder
        prefix, suffix = enc._prefix, enc._suffix  # noqa: SLF001
        landmark = self.config.pooling == "landmark"
        seqs = [window_sequence(self._docs[d].ids, self._docs[d].windows[w], prefix, suffix) for d, w in windows]
        hidden = self._forward(seqs)
        vectors, column = [], {}
        for row, (d, w) in enumerate(windows):
            doc = self._docs[d]
            sents = doc.owners[w]
            if len(sents) == 0:
                continue
            ts, te = window_positions(doc.windows[w], doc.ranges[sents], len(prefix))
            vectors.append(pool_window(hidden[row], ts, te, landmark=landmark))
            for s in sents:
                column[(d, int(s))] = len(column)
        lm = torch.nn.functional.normalize(torch.cat(vectors).float(), dim=-1)
        q = torch.nn.functional.normalize(self.encode_queries_torch([i.query for i in items]), dim=-1)
        targets = torch.zeros((len(items), len(column)), device=lm.device)
        for r, item in enumerate(items):
            share = 1.0 / len(item.runs)
            for d, run in item.runs:
                for s, wgt in zip(run, position_weights(len(run), self.config.alpha)):
                    targets[r, column[(d, s)]] += share * wgt
        self.tokens_seen += sum(len(s) for s in seqs)
        return q, lm, targets

    def encode_queries_torch(self, queries: Sequence[str]) -> Any:
        """Query vectors with gradients, made as ``encode_queries`` makes them (not normalised)."""
        import torch

        enc = self._encoder
        prefix, suffix = enc._prefix, enc._suffix  # noqa: SLF001
        limit = enc.window - len(prefix) - len(suffix)
        landmark = self.config.pooling == "landmark"
        seqs = []
        for q in queries:
            body = enc._backend.encode(enc.query_instruction + q, add_special_tokens=False).ids[:limit]  # noqa: SLF001
            seq = prefix + body + suffix
            if landmark:
                seq = seq[: len(seq) - len(suffix)] + [enc._landmark_id] + suffix  # noqa: SLF001
            seqs.append(seq)
        hidden = self._forward(seqs)
        out = []
        for row, seq in enumerate(seqs):
            if landmark:
                out.append(hidden[row, len(seq) - 1 - len(suffix)])
            elif enc.spec.sentence_pooling == "cls":
                out.append(hidden[row, 0])
            else:
                out.append(pool_window(hidden[row], np.array([0]), np.array([len(seq)]), landmark=False)[0])
        return torch.stack(out)

    def _forward(self, seqs: Sequence[Sequence[int]]) -> Any:
        import torch

        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
            mask[i, : len(s)] = 1
        with _autocast(self.device):
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
        return out.last_hidden_state

    # -- validation --------------------------------------------------------
    def validate(self) -> dict[str, Any]:
        """Dense-only and hybrid recall on every validation set (mean over budgets)."""
        import torch

        from hybridctx.embeddings.config import EncoderConfig
        from hybridctx.embeddings.windowed import WindowedLandmarkEncoder
        from hybridctx.eval.hybrid_method import HybridCtxMethod
        from hybridctx.eval.runner import evaluate
        from hybridctx.retrieval.retriever import RetrievalConfig

        if not self.val_sets:
            return {"score": math.nan}
        if not hasattr(self, "_val_encoder"):
            cfg = self._encoder.config
            # Built directly, not through the registry: it serves the model being trained (loaded=,
            # the live torch object), which no registry backend takes; validation's stores live
            # in memory and are never reopened.
            served = WindowedLandmarkEncoder(EncoderConfig.from_mapping(cfg.to_dict()),
                                             loaded=(self.model, self.tokenizer))
            self._val_encoder = _Versioned(served)
        self._val_encoder.version += 1
        hybrid = HybridCtxMethod("hybrid", encoder=self._val_encoder, config=RetrievalConfig(mode="hybrid"),
                                 show_progress=False)
        dense = hybrid.with_config("dense", mode="dense")
        results = evaluate(self.val_sets, [dense, hybrid], self.config.val_budgets, show_progress=False)
        torch.set_grad_enabled(True)
        self.model.eval()
        out: dict[str, Any] = {}
        for mode in ("dense", "hybrid"):
            for name in self.val_sets:
                out[f"{name}/{mode}"] = float(np.mean([results.cell(mode, name, b).score
                                                       for b in self.config.val_budgets]))
            out[mode] = float(np.mean([out[f"{n}/{mode}"] for n in self.val_sets]))
        out["score"] = (out["dense"] + out["hybrid"]) / 2
        return out

    # -- the loop ----------------------------------------------------------
    def train(self, *, resume: bool = False) -> TrainResult:
        """Run the epochs; return the result (the best model is in ``out_dir``)."""
        import torch
        from tqdm.auto import tqdm

        self._setup()
        cfg = self.config
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
        per_epoch = cfg.steps_per_epoch or max(1, math.ceil(len(self._items) / cfg.batch_queries))
        total = per_epoch * cfg.epochs
        warm = max(1, int(total * cfg.warmup))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (total - s) / max(1, total - warm)))
        state: dict[str, Any] = {"epoch": 0, "step": 0, "history": [], "best": -math.inf, "best_epoch": 0,
                                 "bad": 0, "seconds": 0.0, "tokens": 0, "ema": None, "first_ema": None}
        ckpt = self.out_dir / CHECKPOINT / "state.pt"
        if resume:
            if not ckpt.is_file():
                raise InputError(f"nothing to resume: '{ckpt}' does not exist")
            saved = torch.load(ckpt, map_location=self.device, weights_only=False)
            differ = sorted(k for k, v in asdict(cfg).items() if k != "epochs" and saved["config"].get(k) != v)
            if differ:  # only --epochs may grow
                raise ConfigError(f"--resume needs the settings of the checkpoint's run; {', '.join(differ)} differ")
            self.model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            state = saved["state"]
            torch.set_rng_state(saved["torch_rng"])
            logger.info("resumed from %s at epoch %d, step %d", ckpt, state["epoch"], state["step"])
        elif not state["history"]:
            before = self.validate()
            state["history"].append({"epoch": 0, "step": 0, **before})
            state["untrained"] = before
        self.tokens_seen = state["tokens"]
        started = time.perf_counter() - state["seconds"]
        stopped = "epochs"
        while state["epoch"] < cfg.epochs:
            epoch = state["epoch"] + 1
            rng = random.Random(cfg.seed * 1000 + epoch)
            draw = _BatchDraw(self._items, cfg.batch_queries, cfg.labelled_share, rng)
            bar = tqdm(range(per_epoch), desc=f"epoch {epoch}/{cfg.epochs}", unit="step",
                       disable=None if self.show_progress is None else not self.show_progress)
            losses = []
            for _ in bar:
                picked = draw.next()
                items, windows = self._batch_windows(picked, rng)
                with torch.enable_grad():
                    q, lm, targets = self._encode_batch(items, windows)
                    loss = info_nce(q, lm, targets, cfg.temperature)
                    value = float(loss.detach())
                    if not math.isfinite(value):
                        raise TrainingError(f"the loss became {value} at step {state['step'] + 1}; lower --lr "
                                            f"(now {cfg.lr}) or check the data")
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                state["step"] += 1
                losses.append(value)
                state["ema"] = value if state["ema"] is None else 0.9 * state["ema"] + 0.1 * value
                if state["first_ema"] is None and state["step"] >= 10:
                    state["first_ema"] = state["ema"]
                if state["first_ema"] is not None and state["ema"] > 3 * state["first_ema"] + 1:
                    raise TrainingError(f"training diverged at step {state['step']}: loss {state['ema']:.2f}, "
                                        f"was {state['first_ema']:.2f}; lower --lr (now {cfg.lr})")
                bar.set_postfix(loss=f"{state['ema']:.3f}")
            bar.close()
            state["epoch"] = epoch
            state["seconds"] = time.perf_counter() - started
            state["tokens"] = self.tokens_seen
            scores = self.validate()
            row = {"epoch": epoch, "step": state["step"], "loss": float(np.mean(losses)), **scores}
            state["history"].append(row)
            logger.info("epoch %d: %s", epoch, row)
            improved = not math.isnan(scores["score"]) and scores["score"] > state["best"]
            if improved or math.isnan(scores["score"]):
                state["best"], state["best_epoch"], state["bad"] = scores["score"], epoch, 0
                self._save_model(state)
            else:
                state["bad"] += 1
            self._save_checkpoint(optimizer, scheduler, state)
            if state["bad"] >= cfg.patience:
                stopped = f"early stop: no better validation for {cfg.patience} epoch(s)"
                break
        seconds = time.perf_counter() - started
        if state["best_epoch"] == 0:  # never better than untrained: still write a model, say so
            self._save_model(state)
        self._write_card(state, stopped, seconds)
        return TrainResult(str(self.out_dir), state["best_epoch"], float(state["best"]),
                           tuple(state["history"]), state["step"], seconds,
                           self.tokens_seen / seconds if seconds > 0 else 0.0, stopped)

    # -- writing -----------------------------------------------------------
    def _save_model(self, state: Mapping[str, Any]) -> None:
        """The model directory, written beside and moved into place file by file."""
        from hybridctx.embeddings.models import resolve_model

        out = self.out_dir
        staging = out / ".staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        base = Path(resolve_model(self.config.base).path)
        if base.is_dir():
            for item in base.iterdir():
                if item.name in _BASE_FILES_SKIPPED or item.name.startswith(".") or item.suffix == ".onnx" \
                        or item.name == "onnx":
                    continue
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, staging / item.name)
        from hybridctx.embeddings.windowed import _quiet_transformers

        with _quiet_transformers():
            self.model.save_pretrained(staging, safe_serialization=True)
            self.tokenizer.save_pretrained(staging)
        window = self._encoder.window
        (staging / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": window, "do_lower_case": False}, indent=2) + "\n", encoding="utf-8")
        if self._encoder.query_instruction:
            (staging / "config_sentence_transformers.json").write_text(
                json.dumps({"prompts": {"query": self._encoder.query_instruction}}, indent=2) + "\n",
                encoding="utf-8")
        for item in staging.iterdir():
            target = out / item.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(item, target)
        staging.rmdir()

    def _save_checkpoint(self, optimizer: Any, scheduler: Any, state: Mapping[str, Any]) -> None:
        import torch

        folder = self.out_dir / CHECKPOINT
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "state.pt.tmp"
        torch.save({"model": self.model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "state": dict(state), "config": asdict(self.config),
                    "torch_rng": torch.get_rng_state()}, tmp)
        os.replace(tmp, folder / "state.pt")

    def _write_card(self, state: Mapping[str, Any], stopped: str, seconds: float) -> None:
        from hybridctx.embeddings.training.card import write_card

        write_card(self.out_dir, config=asdict(self.config), history=state["history"],
                   best_epoch=state["best_epoch"], stopped=stopped, seconds=seconds,
                   tokens_per_second=self.tokens_seen / seconds if seconds > 0 else 0.0,
                   examples=len(self._items), window=self._encoder.window, overlap=self._encoder.overlap,
                   info=self.card_info, window_end=self._encoder.window_end)


class _BatchDraw:
    """The queries of each step: shuffled passes over the examples, optionally a fixed labelled share.

    Why a share: a corpus gives thousands of inverse-cloze pairs and a QA file a
    few hundred questions; drawn alike, the self-supervised pairs set the
    objective and the labels barely count.
    """

    def __init__(self, items: Sequence[_Item], batch: int, labelled_share: float | None, rng: random.Random) -> None:
        self._rng = rng
        labelled = [i for i, item in enumerate(items) if item.labelled]
        unlabelled = [i for i, item in enumerate(items) if not item.labelled]
        self._items = items
        if labelled_share is None or not labelled or not unlabelled:
            self._pools = [(list(range(len(items))), batch)]
        else:
            take = min(batch, max(0, round(labelled_share * batch)))
            self._pools = [(pool, n) for pool, n in ((labelled, take), (unlabelled, batch - take)) if n > 0]
        self._orders = [list(pool) for pool, _ in self._pools]
        for order in self._orders:
            rng.shuffle(order)
        self._cursors = [0] * len(self._pools)

    def next(self) -> list[_Item]:
        """One step's queries. A single pool keeps the plain draw (the last batch of a pass may be
        short); with a labelled share each pool wraps round, so every batch holds its share."""
        picked: list[_Item] = []
        wrap = len(self._pools) > 1
        for k, (_, n) in enumerate(self._pools):
            order, want = self._orders[k], n
            while want > 0:
                if self._cursors[k] >= len(order):
                    self._rng.shuffle(order)
                    self._cursors[k] = 0
                start = self._cursors[k]
                chunk = order[start : start + want]
                picked += [self._items[i] for i in chunk]
                self._cursors[k] = start + len(chunk)
                want = want - len(chunk) if wrap else 0
        return picked


def _layer_list(model: Any) -> Any:
    for path in ("encoder.layer", "layers", "model.layers", "transformer.layer", "h"):
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None:
            return obj
    return None


class _autocast:
    """bf16 (or fp16) autocast on CUDA; nothing on the CPU."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._ctx: Any = None

    def __enter__(self) -> None:
        import torch

        if str(self.device).startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            self._ctx = torch.autocast("cuda", dtype=dtype)
            self._ctx.__enter__()

    def __exit__(self, *exc: Any) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(*exc)
