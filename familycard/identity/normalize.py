"""Name normalisation: one matching key for a personal name written in any script.

Kazakhstan's registries write the same person's name in several ways: Kazakh Cyrillic (``Нұрлан``),
Russian Cyrillic as Russian-language agencies write it (``Нурлан``), and Latin under several systems -
the 2021 Kazakh Latin alphabet (``Nūrlan``), ICAO-9303 passport practice (``NURLAN``) and BGN/PCGN-like
Russian romanisation (``Nurlan``). :func:`normalize_name` maps all of them to one lower-case Latin
*skeleton* (``nurlan``) so that record linkage can compare keys instead of spellings.

The steps, in order:

1. Unicode NFC, ``İ`` → ``i`` (so that Turkish-style dotted capitals do not leave a combining dot), then
   :meth:`str.casefold`.
2. Cyrillic → Latin with one table covering Russian and the nine Kazakh letters; each Kazakh letter goes
   to its plain counterpart (ә→a, ғ→g, қ→k, ң→n, ө→o, ұ→u, ү→u, һ→h, і→i), ``ё`` → ``e``, ``ъ``/``ь``
   are dropped. The table follows passport practice (ж→zh, х→kh, ц→ts, ч→ch, ш→sh, щ→shch, ю→iu,
   я→ia) so that Cyrillic input and Latin input then go through the very same Latin rules.
3. Latin letters with their own identity: ``ş``/``ș`` → ``sh``, ``ç`` → ``ch``, ``ı`` → ``i``,
   ``ə`` → ``a``, ``ŋ`` → ``n`` (plus a few European letters); then every other diacritic is stripped
   (ä→a, ğ→g, ñ→n, ö→o, ū→u, ü→u, á→a, ...). Steps 2 and 3 repeat where stripping a mark leaves a
   letter they map (``Ӫ`` → ``ө`` → ``o``), so that a key normalises to itself.
4. Punctuation: hyphens, apostrophes and every other character that is neither a letter, a digit nor
   white space is removed (``Иванова-Петрова`` → ``ivanovapetrova``); white space is collapsed to one
   space and stripped.
5. Skeleton rewrites, repeated until nothing changes. Each one settles a difference between the systems
   above, or a common clerk's alternative:

   * ``q`` → ``k`` (Kazakh Latin ``қ``), ``w`` → ``v``, ``x`` → ``ks`` (``Alexander`` = ``Aleksandr``);
   * ``kh`` → ``h``, and ``kkh`` → ``h`` (passport/BGN ``х`` is ``kh``, Kazakh Latin ``h``; so ``кх``
     is ``kkh`` or ``kh`` and ``х`` is ``kh`` or ``h``; Kazakh ``һ`` is ``h`` in every system);
   * ``zh`` → ``j`` (``ж``: passport/BGN ``zh``, Kazakh Latin ``j``);
   * ``shch`` → ``sh`` and ``shsh`` → ``sh`` (``щ``: ``shch`` versus Kazakh Latin ``şş``);
   * word-initial ``ye`` → ``e`` (``Yerlan`` = ``Ерлан``);
   * ``y`` → ``i``: ``й``, ``ы`` and ``и`` are one letter in the key. The systems disagree on ``й``
     (passport and Kazakh Latin ``i``, BGN ``y``) and on the ``y`` of ``ю``/``я`` (``iu``/``yu``), and
     clerks confuse ``ы``/``и`` in Kazakh names (``Сабыр``/``Сабир``), so the key does not keep them apart;
   * ``io`` → ``e``: ``ё`` is ``io`` in the Kazakh Latin alphabet but ``e`` elsewhere (``Fiodor`` =
     ``Fedor`` = ``Фёдор``); the cost is that a genuine ``и``+``о`` (``Иоганн``) also becomes ``e``, the
     same way in every script;
   * last, runs of one letter collapse to one (``Мухаммед`` = ``Мұхамед``; ``ия`` → ``iia`` → ``ia``
     so that ``Aliya``, ``ALIIA`` and ``Älia`` agree).

Known limits (none of them occur in the synthetic name pools): passport ``ъ`` is ``IE`` (ICAO) while the
other systems drop it; ``ң`` written as ``ng`` (BGN Kazakh) stays ``ng``; Kazakh Latin of 2017/2018
(apostrophes, acute accents) is handled only where stripping the accent gives the same letter.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import numpy as np
import numpy.typing as npt

__all__ = ["normalize_array", "normalize_name"]

_CYRILLIC_TO_LATIN: dict[str, str] = {
    "а": "a",
    "ә": "a",
    "б": "b",
    "в": "v",
    "г": "g",
    "ғ": "g",
    "ґ": "g",
    "д": "d",
    "е": "e",
    "є": "e",
    "ё": "e",
    "ж": "zh",
    "з": "z",
    "и": "i",
    "і": "i",
    "ї": "i",
    "й": "i",
    "к": "k",
    "қ": "k",
    "л": "l",
    "м": "m",
    "н": "n",
    "ң": "n",
    "о": "o",
    "ө": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ұ": "u",
    "ү": "u",
    "ў": "u",
    "ф": "f",
    "х": "kh",
    "һ": "h",
    "ц": "ts",
    "ч": "ch",
    "ш": "sh",
    "щ": "shch",
    "ъ": "",
    "ы": "y",
    "ь": "",
    "э": "e",
    "ю": "iu",
    "я": "ia",
}

_LATIN_SPECIAL: dict[str, str] = {
    "ş": "sh",
    "ș": "sh",
    "ç": "ch",
    "ı": "i",
    "ə": "a",
    "ŋ": "n",
    "ø": "o",
    "æ": "ae",
    "œ": "oe",
    "ł": "l",
    "đ": "d",
    "ð": "d",
    "þ": "th",
}

_TRANSLATE = str.maketrans({**_CYRILLIC_TO_LATIN, **_LATIN_SPECIAL})
_REPEAT = re.compile(r"([^\W\d_])\1+")
_WORD_START_YE = re.compile(r"(?:^|(?<= ))ye")
_REWRITES: tuple[tuple[str, str], ...] = (
    ("q", "k"),
    ("w", "v"),
    ("x", "ks"),
    ("zh", "j"),
    ("shch", "sh"),
    ("shsh", "sh"),
)
_KH = re.compile(r"k+h")


def _skeleton_pass(s: str) -> str:
    """One pass of the skeleton rewrites (see the module docstring for why each exists)."""
    for old, new in _REWRITES[:3]:
        s = s.replace(old, new)
    s = _KH.sub("h", s)
    for old, new in _REWRITES[3:]:
        s = s.replace(old, new)
    s = _WORD_START_YE.sub("e", s)
    s = s.replace("y", "i").replace("io", "e")
    return _REPEAT.sub(r"\1", s)


@functools.lru_cache(maxsize=262_144)
def normalize_name(s: str) -> str:
    """The cross-script matching key of a name: lower-case Latin skeleton, see the module docstring.

    >>> normalize_name("Нұрлан") == normalize_name("NURLAN") == normalize_name("Nūrlan") == "nurlan"
    True
    """
    s = unicodedata.normalize("NFKC", s).replace("İ", "i").casefold()
    while True:  # (again where stripping a mark reveals a letter to transliterate: Ӫ → ө → o)
        t = "".join(
            c for c in unicodedata.normalize("NFKD", s.translate(_TRANSLATE)) if not unicodedata.combining(c)
        )
        if t == s:
            break
        s = t
    s = "".join(c if c.isalnum() else " " if c.isspace() else "" for c in s)
    s = " ".join(s.split())
    while True:
        t = _skeleton_pass(s)
        if t == s:
            return s
        s = t


def normalize_array(values: npt.ArrayLike) -> npt.NDArray[np.object_]:
    """:func:`normalize_name` over a column; each distinct value is normalised once.

    ``None`` (and any other non-string) gives the empty key ``""``. The result has dtype ``object``
    and the shape of ``values``.
    """
    arr = np.asarray(values, dtype=object)
    flat = arr.ravel()
    out = np.empty(flat.shape, dtype=object)
    if flat.size == 0:
        return out.reshape(arr.shape)
    text = np.array([v if isinstance(v, str) else "" for v in flat], dtype=object)
    uniq, inverse = np.unique(text, return_inverse=True)
    keys = np.array([normalize_name(u) for u in uniq], dtype=object)
    out[:] = keys[inverse.ravel()]
    return out.reshape(arr.shape)
