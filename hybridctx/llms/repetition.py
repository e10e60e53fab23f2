"""Keeping a small local model out of loops: a repetition penalty on its own words, and a loop stop.

Why: greedy decoding of a small model (SmolLM2-135M) falls into loops, the same
sentence eight times over until ``max_tokens``. Two controls, both on the
tokens the model *generated* only:

- a repetition penalty (the CTRL rule: a logit of a token already generated is
  divided by the penalty when positive, multiplied when negative) that makes
  a repeat less likely. transformers' own ``repetition_penalty`` also
  penalises every token of the prompt, which would push the model away from
  copying the answer out of its context, the thing a reader must do;
- a loop stop: when the last ``ngram`` generated tokens already occurred
  earlier in the answer, the model is repeating itself; generation stops and
  the answer is cut where the repeat began (:func:`loop_start`). While
  streaming, the last ``ngram`` tokens are held back, so no piece of the repeat
  is ever shown and the pieces still join to the answer.

transformers and torch are imported when a control is built, never at import.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

__all__ = ["hold_back_streamer", "loop_start", "loop_stop", "repetition_penalty"]


def loop_start(ids: Sequence[int], ngram: int) -> int | None:
    """Where ``ids`` begin to repeat themselves: the first ``i`` whose ``ngram`` tokens occurred earlier.

    A sentence generated twice in a row is cut back to one copy, a loop of a
    period shorter than ``ngram`` ("is: is: is: ...") to one period.

    Returns:
        The index to cut at, or ``None`` when no ``ngram``-gram repeats.
    """
    if ngram < 1:
        return None
    seen: set[tuple[int, ...]] = set()
    for i in range(len(ids) - ngram + 1):
        gram = tuple(ids[i:i + ngram])
        if gram in seen:
            return i
        seen.add(gram)
    return None


def repetition_penalty(prompt_tokens: int, penalty: float) -> Any:
    """A ``LogitsProcessor`` penalising the tokens generated after the first ``prompt_tokens``."""
    import torch
    from transformers import LogitsProcessor

    class _GeneratedRepetitionPenalty(LogitsProcessor):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
            generated = input_ids[:, prompt_tokens:]
            if generated.shape[1] == 0:
                return scores
            picked = torch.gather(scores, 1, generated)
            picked = torch.where(picked < 0, picked * penalty, picked / penalty)
            return scores.scatter(1, generated, picked)

    return _GeneratedRepetitionPenalty()


def loop_stop(prompt_tokens: int, ngram: int) -> Any:
    """A ``StoppingCriteria`` that ends generation once the newest ``ngram`` generated tokens repeat."""
    import torch
    from transformers import StoppingCriteria

    class _LoopStop(StoppingCriteria):
        def __init__(self) -> None:
            self.seen: set[tuple[int, ...]] = set()
            self.checked = 0  # grams of the answer looked at so far

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
            ids = input_ids[0, prompt_tokens:].tolist()
            looping = False
            while self.checked + ngram <= len(ids):  # every gram once, as it completes
                gram = tuple(ids[self.checked:self.checked + ngram])
                looping = looping or gram in self.seen
                self.seen.add(gram)
                self.checked += 1
            return torch.full((input_ids.shape[0],), looping, dtype=torch.bool, device=input_ids.device)

    return _LoopStop()


def hold_back_streamer(tokenizer: Any, hold: int, on_piece: Callable[[str], None]) -> Any:
    """A streamer that hands on decoded text but keeps the newest ``hold`` tokens back.

    Call ``finish(cut)`` after generation: it hands on the text up to token
    ``cut`` (all of it when ``None``); ``pieces`` then join to the decoded answer.
    """
    from transformers.generation.streamers import BaseStreamer

    class _HoldBack(BaseStreamer):
        def __init__(self) -> None:
            self.ids: list[int] = []
            self.sent = ""
            self.prompt_done = False

        def put(self, value: Any) -> None:
            if not self.prompt_done:  # generate() first pushes the prompt
                self.prompt_done = True
                return
            self.ids.extend(int(i) for i in value.reshape(-1).tolist())
            self._emit(len(self.ids) - hold, final=False)

        def end(self) -> None:
            """Nothing: ``finish`` decides how much of the tail is an answer."""

        def finish(self, cut: int | None) -> str:
            self._emit(len(self.ids) if cut is None else cut, final=True)
            return self.sent

        def _emit(self, upto: int, *, final: bool) -> None:
            if upto <= 0:
                return
            text = tokenizer.decode(self.ids[:upto], skip_special_tokens=True)
            if not final and text.endswith("\ufffd"):  # half a character: wait for the rest
                return
            if text.startswith(self.sent) and len(text) > len(self.sent):
                piece, self.sent = text[len(self.sent):], text
                on_piece(piece)

    return _HoldBack()
