"""The needles of the needle-in-a-haystack test, and the question that finds them.

Why a module of its own: the needles decide what a trial measures. Each is one
whole sentence with a short *value* (the thing an LLM must answer with), made
from a template filled by a seeded random generator, so a run is reproducible
and a different ``--seed`` hides different facts. Three variants:

- ``single``: one fact in Kamradt's style ("The best thing to do in {city} is
  eat a {food} and sit in {place} on a sunny day.");
- ``multi``: several facts the one question needs, all of which must be
  packed (Kamradt's multi-needle "secret ingredients of the perfect pizza");
- ``multikey``: one "special magic number" for the asked key among distractor
  needles of the same form with other keys (RULER's multi-key NIAH); the
  trial passes when the asked key's needle is packed, and whether the
  distractors were packed too is recorded.

English and Chinese (简体) templates; the values never occur in the shipped or
shared haystacks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from hybridctx.errors import ConfigError

__all__ = ["Language", "Needle", "NeedleSet", "Variant", "make_needles"]

Variant = Literal["single", "multi", "multikey"]
Language = Literal["en", "zh"]
Role = Literal["needle", "distractor"]
VARIANTS: tuple[str, ...] = ("single", "multi", "multikey")


@dataclass(frozen=True)
class Needle:
    """One sentence to hide.

    Attributes:
        text: the whole sentence, as inserted.
        value: the answer it carries (what an LLM's reply must contain).
        key: what distinguishes it from other needles of its template.
        role: ``needle`` (must be found) or ``distractor`` (multikey only).
    """

    text: str
    value: str
    key: str
    role: Role = "needle"


@dataclass(frozen=True)
class NeedleSet:
    """The needles of one trial (needles first, then distractors) and their question."""

    question: str
    needles: tuple[Needle, ...]

    @property
    def targets(self) -> tuple[Needle, ...]:
        return tuple(n for n in self.needles if n.role == "needle")

    @property
    def distractors(self) -> tuple[Needle, ...]:
        return tuple(n for n in self.needles if n.role == "distractor")


_EN = {
    "city": ["San Francisco", "Lisbon", "Kyoto", "Montreal", "Cape Town", "Valparaiso", "Edinburgh", "Hanoi"],
    "food": ["sandwich", "custard tart", "bowl of ramen", "bagel", "tamale", "meat pie", "banh mi", "churro"],
    "place": ["Dolores Park", "the botanical garden", "the harbour wall", "the old castle lawn", "the riverside steps"],
    "ingredient": ["Figs", "Prosciutto", "Goat cheese", "Smoked paprika", "Black olives", "Pickled walnuts",
                   "Roasted fennel", "Candied lemon"],
    "dish": ["pizza", "lasagne", "risotto"],
    "adjective": ["amber", "silent", "crooked", "velvet", "frozen", "hollow", "copper", "drowsy", "scarlet", "gentle"],
    "noun": ["otter", "lantern", "harbour", "violin", "glacier", "orchard", "falcon", "teapot", "compass", "meadow"],
}
_ZH = {
    "city": ["杭州", "成都", "西安", "厦门", "苏州", "大理", "青岛", "桂林"],
    "food": ["小笼包", "担担面", "肉夹馍", "沙茶面", "生煎包", "米线", "锅贴", "米粉"],
    "place": ["湖边的草地上", "人民公园里", "老城墙下", "江边的台阶上", "植物园里"],
    "ingredient": ["香菇", "虾仁", "韭菜", "木耳", "笋丁", "蟹黄", "松子", "芹菜"],
    "dish": ["饺子", "馄饨", "包子"],
    "adjective": ["琥珀色的", "银色的", "翡翠色的", "黄铜的", "水晶的", "红木的", "蓝色的", "紫檀的"],
    "noun": ["信封", "风筝", "罗盘", "闹钟", "雨伞", "火车", "茶壶", "口琴"],
}


def make_needles(
    variant: Variant,
    language: Language,
    rng: random.Random,
    *,
    needles: int = 3,
    distractors: int = 3,
) -> NeedleSet:
    """Draw the needles of one trial.

    Args:
        variant: ``single``, ``multi`` or ``multikey``.
        language: ``en`` or ``zh``: which templates.
        rng: the trial's generator (seeded by the caller, so runs repeat).
        needles: facts hidden by ``multi`` (at least 1).
        distractors: needles with other keys hidden by ``multikey``.

    Raises:
        ConfigError: an unknown variant or language, or counts the templates cannot fill.
    """
    if language not in ("en", "zh"):
        raise ConfigError(f"language '{language}' is not one of en, zh")
    words = _EN if language == "en" else _ZH
    if variant == "single":
        city, food, place = rng.choice(words["city"]), rng.choice(words["food"]), rng.choice(words["place"])
        if language == "en":
            text = f"The best thing to do in {city} is eat a {food} and sit in {place} on a sunny day."
            question = f"What is the best thing to do in {city}?"
        else:
            text = f"在{city}最好的事情是吃{food}，然后坐在{place}晒太阳。"
            question = f"在{city}最好的事情是什么？"
        return NeedleSet(question, (Needle(text, food, city),))
    if variant == "multi":
        if not 1 <= needles <= len(words["ingredient"]):
            raise ConfigError(f"--needles {needles} must be between 1 and {len(words['ingredient'])}")
        dish = rng.choice(words["dish"])
        picked = rng.sample(words["ingredient"], needles)
        if language == "en":
            texts = [f"{i} is one of the secret ingredients needed to build the perfect {dish}." for i in picked]
            question = f"What are the secret ingredients needed to build the perfect {dish}?"
        else:
            texts = [f"{i}是做出完美{dish}的秘密配料之一。" for i in picked]
            question = f"做出完美{dish}的秘密配料有哪些？"
        return NeedleSet(question, tuple(Needle(t, i, i) for t, i in zip(texts, picked)))
    if variant == "multikey":
        pairs = [(a, n) for a in words["adjective"] for n in words["noun"]]
        if not 0 <= distractors < len(pairs):
            raise ConfigError(f"--distractors {distractors} must be between 0 and {len(pairs) - 1}")
        keys = rng.sample(pairs, distractors + 1)
        numbers = rng.sample(range(1_000_000, 10_000_000), distractors + 1)
        made = []
        for k, ((adjective, noun), number) in enumerate(zip(keys, numbers)):
            key = f"{adjective}-{noun}" if language == "en" else f"{adjective}{noun}"
            if language == "en":
                text = f"The special magic number for the {key} is {number}."
            else:
                text = f"{key}的特殊魔法数字是{number}。"
            made.append(Needle(text, str(number), key, "needle" if k == 0 else "distractor"))
        key = made[0].key
        question = (f"What is the special magic number for the {key}?" if language == "en"
                    else f"{key}的特殊魔法数字是多少？")
        return NeedleSet(question, tuple(made))
    raise ConfigError(f"variant '{variant}' is not one of {', '.join(VARIANTS)}")
