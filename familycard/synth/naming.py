"""Giving simulated people names the way families do: children take the father's surname (or the
mother's), most wives take the husband's, patronymics come from the father's given name.

Name pools and spelling rules live in ``names``; this module only decides who gets which name. A
surname is held as a *stem* index into one national table whose row has the male and female forms,
so a daughter of Әбдірахманов is Әбдірахманова.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

from familycard.synth import names

YEAR = 365.25


@cache
def _tables() -> dict[str, np.ndarray]:
    """National given-name and surname tables across naming traditions, with draw weights."""
    given: dict[int, list[np.ndarray]] = {1: [], 2: []}
    given_culture: dict[int, list[np.ndarray]] = {1: [], 2: []}
    given_w: dict[int, list[np.ndarray]] = {1: [], 2: []}
    sur_m: list[np.ndarray] = []
    sur_f: list[np.ndarray] = []
    sur_c: list[np.ndarray] = []
    sur_w: list[np.ndarray] = []
    for c in (0, 1, 2):
        for sex in (1, 2):
            pool = np.asarray(names.GIVEN[(c, sex)], dtype=object)
            given[sex].append(pool)
            given_culture[sex].append(np.full(len(pool), c, np.int8))
            given_w[sex].append(_zipf(len(pool)))
        m = np.asarray(names.SURNAME[(c, 1)], dtype=object)
        f = np.asarray(names.SURNAME[(c, 2)], dtype=object)
        sur_m.append(m)
        sur_f.append(f)
        sur_c.append(np.full(len(m), c, np.int8))
        sur_w.append(_zipf(len(m)))
    out: dict[str, np.ndarray] = {}
    for sex in (1, 2):
        out[f"given{sex}"] = np.concatenate(given[sex])
        out[f"given{sex}_culture"] = np.concatenate(given_culture[sex])
        out[f"given{sex}_w"] = np.concatenate(given_w[sex])
    out["sur1"] = np.concatenate(sur_m)
    out["sur2"] = np.concatenate(sur_f)
    out["sur_culture"] = np.concatenate(sur_c)
    out["sur_w"] = np.concatenate(sur_w)
    return out


def _zipf(n: int) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** 0.9
    return w / w.sum()


def _draw(
    rng: np.random.Generator, culture: np.ndarray, pool_culture: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Indices into a national table, drawn within each person's naming tradition."""
    out = np.zeros(len(culture), np.int32)
    for c in (0, 1, 2):
        m = culture == c
        k = int(m.sum())
        if not k:
            continue
        idx = np.flatnonzero(pool_culture == c)
        w = weights[idx] / weights[idx].sum()
        out[m] = idx[rng.choice(len(idx), k, p=w)]
    return out


def draw_given(rng: np.random.Generator, culture: np.ndarray, sex: np.ndarray) -> np.ndarray:
    """Given-name indices (into the table of each person's sex)."""
    t = _tables()
    out = np.zeros(len(sex), np.int32)
    for s in (1, 2):
        m = sex == s
        out[m] = _draw(rng, culture[m], t[f"given{s}_culture"], t[f"given{s}_w"])
    return out


def given_text(idx: np.ndarray, sex: np.ndarray) -> np.ndarray:
    t = _tables()
    return np.where(
        sex == 1, t["given1"][np.where(sex == 1, idx, 0)], t["given2"][np.where(sex == 2, idx, 0)]
    )


def surname_text(stem: np.ndarray, sex: np.ndarray) -> np.ndarray:
    t = _tables()
    return np.where(sex == 1, t["sur1"][stem], t["sur2"][stem])


def patronymics(
    father_given: np.ndarray, culture: np.ndarray, sex: np.ndarray, kk_style: np.ndarray, none: np.ndarray
) -> np.ndarray:
    """Patronymics, computed once per distinct (father's name, tradition, sex, style)."""
    out = np.full(len(sex), "", dtype=object)
    keep = ~none
    if not keep.any():
        return out
    keys = np.rec.fromarrays([father_given[keep].astype(str), culture[keep], sex[keep], kk_style[keep]])
    uniq, inv = np.unique(keys, return_inverse=True)
    texts = np.array(
        [names.patronymic(str(g), int(c), int(s), style="kk" if k else "ru") for g, c, s, k in uniq],
        dtype=object,
    )
    out[keep] = texts[inv]
    return out


def assign(
    rng: np.random.Generator,
    culture: np.ndarray,
    sex: np.ndarray,
    birth: np.ndarray,
    mother: np.ndarray,
    father: np.ndarray,
    couples: Sequence[tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Surname, given name, patronymic (texts) plus stem and given indices for a whole population."""
    t = _tables()
    n = len(sex)
    given_idx = draw_given(rng, culture, sex)
    stem = _draw(rng, culture, t["sur_culture"], t["sur_w"])
    has_father = father >= 0
    for _ in range(3):  # grandfather → father → child
        stem[has_father] = stem[father[has_father]]
    for h, w in couples:
        took = rng.random(len(w)) < np.where(culture[w] == 1, 0.85, 0.6)
        stem[w[took]] = stem[h[took]]
    only_mother = ~has_father & (mother >= 0)
    stem[only_mother] = stem[mother[only_mother]]
    # patronymic from the father's given name (or an unknown father's, drawn)
    fg = np.where(has_father, given_idx[np.maximum(father, 0)], draw_given(rng, culture, np.ones(n, np.int8)))
    father_given = given_text(fg, np.ones(n, np.int8))
    born_year = 1970 + birth / YEAR
    kk_style = (culture == 0) & (born_year >= 1995) & (rng.random(n) < 0.5)
    none = (culture == 2) & (rng.random(n) < 0.3)
    pat = patronymics(father_given, culture, sex, kk_style, none)
    return surname_text(stem, sex), given_text(given_idx, sex), pat, stem, given_idx


def newborn(
    rng: np.random.Generator,
    culture: np.ndarray,
    sex: np.ndarray,
    parent_stem: np.ndarray,
    father_given: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Names of babies: the parent's surname stem, a drawn given name, the father's patronymic."""
    given_idx = draw_given(rng, culture, sex)
    if father_given is None:
        father_given = given_text(
            draw_given(rng, culture, np.ones(len(sex), np.int8)), np.ones(len(sex), np.int8)
        )
    kk_style = (culture == 0) & (rng.random(len(sex)) < 0.5)
    none = (culture == 2) & (rng.random(len(sex)) < 0.3)
    pat = patronymics(father_given, culture, sex, kk_style, none)
    return surname_text(parent_stem, sex), given_text(given_idx, sex), pat, given_idx
