"""The explanation of one family's level: which deprivations put it there, with their values, the agency
records behind them and the dates of those records, in Kazakh, Russian or English.

:func:`explain_family` reads the published snapshot (the one the web shows) and the methodology the run
used; :func:`render` turns the explanation into text. Persons appear by their pseudonymous person id and
role, never by name or IIN.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from familycard.indicators import compute
from familycard.indicators.facts import SELECTION
from familycard.indicators.methodology import LANGS, Indicator, Methodology, load_methodology
from familycard.scoring.levels import micro_weights
from familycard.store.engine import open_engine
from familycard.store.warehouse import Warehouse

LABELS: dict[str, dict[str, str]] = {
    "family": {"kk": "Отбасы", "ru": "Семья", "en": "Family"},
    "as_of": {"kk": "жағдайы бойынша", "ru": "по состоянию на", "en": "as of"},
    "methodology": {"kk": "Әдістеме", "ru": "Методика", "en": "Methodology"},
    "level": {"kk": "Деңгей", "ru": "Уровень", "en": "Level"},
    "score": {"kk": "Балл", "ru": "Балл", "en": "Score"},
    "from": {"kk": "деңгей басталады", "ru": "уровень начинается с", "en": "level starts at"},
    "next": {"kk": "келесі деңгей", "ru": "следующий уровень", "en": "next level"},
    "floor": {
        "kk": "Ең төменгі деңгей қолданылды",
        "ru": "Применён нижний порог уровня",
        "en": "Floor applied",
    },
    "why": {
        "kk": "Деңгейді айқындаған депривациялар",
        "ru": "Лишения, определившие уровень",
        "en": "Deprivations that set the level",
    },
    "none": {"kk": "Депривация жоқ", "ru": "Лишений нет", "en": "No deprivation"},
    "share": {"kk": "балдағы үлесі", "ru": "доля в балле", "en": "share of the score"},
    "value": {"kk": "мәні", "ru": "значение", "en": "value"},
    "members": {"kk": "мүше", "ru": "член(а) семьи", "en": "member(s)"},
    "records": {"kk": "Жазбалар", "ru": "Записи", "en": "Records"},
    "checked": {
        "kk": "Тексерілген дереккөздер (жазба жоқ)",
        "ru": "Проверенные источники (записи нет)",
        "en": "Sources checked (no record)",
    },
    "delivery": {"kk": "жеткізілім", "ru": "поставка", "en": "delivery"},
    "situations": {
        "kk": "Қиын өмірлік жағдайлар",
        "ru": "Трудные жизненные ситуации",
        "en": "Difficult life situations",
    },
    "uncertain": {
        "kk": "Назар аударыңыз: отбасының кейбір мүшелерінің байланысы сенімсіз, оларды маман тексеруі тиіс",
        "ru": "Внимание: связь некоторых членов с семьёй не подтверждена, её должен проверить специалист",
        "en": "Note: some members' place in the family is uncertain and must be checked by a person",
    },
    "summary": {
        "kk": "{n} индикатордың {k}-і бойынша депривация",
        "ru": "Лишения по {k} из {n} индикаторов",
        "en": "Deprived on {k} of {n} indicators",
    },
    "contest": {
        "kk": "Жазба қате болса, оған дау айтуға болады: дереккөз мен жазба нөмірін көрсетіңіз.",
        "ru": "Если запись неверна, её можно оспорить: укажите источник и номер записи.",
        "en": "If a record is wrong it can be contested: quote the source and the record number.",
    },
}


DOMAINS: dict[str, dict[str, str]] = {
    "economic": {"kk": "экономикалық жағдай", "ru": "экономическое положение", "en": "economic conditions"},
    "employment": {"kk": "жұмыспен қамту", "ru": "занятость", "en": "employment"},
    "housing": {"kk": "тұрғын үй", "ru": "жильё", "en": "housing"},
    "health": {
        "kk": "денсаулық және мүгедектік",
        "ru": "здоровье и инвалидность",
        "en": "health and disability",
    },
    "education": {"kk": "білім", "ru": "образование", "en": "education"},
    "social": {
        "kk": "әлеуметтік жағдай және қауіпсіздік",
        "ru": "социальные условия и безопасность",
        "en": "social conditions and safety",
    },
    "gender": {"kk": "гендерлік теңдік", "ru": "гендерное равенство", "en": "gender"},
}


ROLES: dict[str, dict[str, str]] = {
    "head": {"kk": "отбасы басшысы", "ru": "глава семьи", "en": "head"},
    "spouse": {"kk": "жұбайы", "ru": "супруг(а)", "en": "spouse"},
    "partner": {"kk": "серіктесі", "ru": "партнёр", "en": "partner"},
    "child": {"kk": "баласы", "ru": "ребёнок", "en": "child"},
    "stepchild": {"kk": "өгей баласы", "ru": "пасынок/падчерица", "en": "stepchild"},
    "adult_child": {"kk": "ересек баласы", "ru": "взрослый ребёнок", "en": "adult child"},
    "parent": {"kk": "ата-анасы", "ru": "родитель", "en": "parent"},
    "grandchild": {"kk": "немересі", "ru": "внук/внучка", "en": "grandchild"},
    "child_in_law": {"kk": "келіні/күйеу баласы", "ru": "невестка/зять", "en": "child-in-law"},
    "relative": {"kk": "туысы", "ru": "родственник", "en": "relative"},
}


class NotFound(LookupError):
    """The family is not in the published snapshot."""


@dataclass
class Source:
    feed: str
    record_key: str
    period: str
    person_id: str
    role: str


@dataclass
class Deprivation:
    indicator: str
    domain: str
    unit: str
    name: str
    description: str
    value: float | None
    weight: float
    sources: list[Source] = field(default_factory=list)
    checked: dict[str, str] = field(default_factory=dict)
    """Feeds whose absence of a record the deprivation rests on, with their latest delivery period."""


@dataclass
class Explanation:
    family_id: str
    as_of: str
    lang: str
    methodology: dict[str, str]
    level: str
    level_name: str
    score: float
    level_from: float
    next_level: str | None
    next_from: float | None
    floor_reason: str | None
    targeted: bool
    uncertain_members: int
    indicators: int
    deprivations: list[Deprivation]
    situations: list[dict[str, str]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _published(data: Path) -> tuple[Warehouse, str]:
    wh = Warehouse(data)
    run = wh.published() or wh.current()
    if run is None or "family_scores" not in wh.tables(run):
        raise FileNotFoundError(
            f"no assessed families in the warehouse at {data}: run `familycard run` first"
        )
    return wh, run


def _methodology_of(wh: Warehouse, run: str) -> Methodology:
    for r in reversed(wh.runs()):
        if r > run:
            continue
        meta = wh.meta(r).get("methodology")
        if isinstance(meta, dict) and meta.get("id"):
            return load_methodology(str(meta["id"]))
    return load_methodology()


def explain_family(data: Path, family_id: str, lang: str = "en") -> Explanation:
    """The explanation of ``family_id``'s level in the published snapshot, in ``lang``."""
    if lang not in LANGS:
        raise ValueError(f"language must be one of {', '.join(LANGS)}, not {lang!r}")
    wh, run = _published(data)
    meth = _methodology_of(wh, run)
    fid = family_id.replace("'", "''")
    with open_engine("duckdb") as eng:
        for name in (
            "family_scores",
            "family_indicators",
            "indicator_sources",
            "family_situations",
            "family_members",
            "deliveries",
        ):
            eng.register_parquet(name, wh.table_path(name, run))
        score = eng.fetch(f"SELECT * FROM family_scores WHERE family_id = '{fid}'").to_pylist()
        if not score:
            raise NotFound(f"no family {family_id!r} in the published snapshot {run}")
        s = score[0]
        row = eng.fetch(f"SELECT * FROM family_indicators WHERE family_id = '{fid}'").to_pylist()[0]
        srcs = eng.fetch(
            f"""SELECT s.indicator, s.feed, s.record_key, s.period, CAST(s.person_id AS VARCHAR) AS person_id,
                    m.role
                FROM indicator_sources AS s LEFT JOIN family_members AS m
                    ON m.person_id = s.person_id AND m.family_id = s.family_id
                WHERE s.family_id = '{fid}' ORDER BY s.indicator, s.feed, s.period DESC, s.record_key"""
        ).to_pylist()
        sits = (
            eng.fetch(f"SELECT situation FROM family_situations WHERE family_id = '{fid}'")
            .column(0)
            .to_pylist()
        )
        latest = {
            str(r["feed"]): str(r["p"])
            for r in eng.fetch(
                "SELECT feed, MAX(period) AS p FROM deliveries WHERE status = 'loaded' GROUP BY feed"
            ).to_pylist()
        }
        as_of = str(
            eng.fetch(f"SELECT MAX(as_of) AS a FROM family_members WHERE family_id = '{fid}'").column(0)[0]
        )
    by_ind: dict[str, list[Source]] = {}
    for r in srcs:
        by_ind.setdefault(r["indicator"], []).append(
            Source(
                r["feed"], str(r["record_key"]), str(r["period"]), str(r["person_id"]), str(r["role"] or "")
            )
        )
    weights = micro_weights(meth)
    deprived = [i for i in meth.indicators if row.get(f"d_{i.id}")]
    deprived.sort(key=lambda i: (-weights[i.id], i.id))
    deprivations = []
    for ind in deprived:
        sources = by_ind.get(ind.id, [])
        deprivations.append(
            Deprivation(
                indicator=ind.id,
                domain=ind.domain,
                unit=ind.unit,
                name=ind.name.get(lang),
                description=ind.description.get(lang),
                value=row.get(f"v_{ind.id}"),
                weight=weights[ind.id] / 1_000_000,
                sources=sources,
                checked={
                    f: str(latest.get(f, "—")) for f in _feeds(ind) if f not in {x.feed for x in sources}
                },
            )
        )
    rank = meth.level_rank(str(s["level"]))
    nxt = meth.levels[rank + 1] if rank + 1 < len(meth.levels) else None
    floor = meth.floors[int(s["floor"])].reason.get(lang) if s.get("floor") is not None else None
    sit_names = {x.id: x.name.get(lang) for x in meth.situations}
    sit_basis = {x.id: x.legal_basis.get(lang) for x in meth.situations}
    return Explanation(
        family_id=family_id,
        as_of=as_of,
        lang=lang,
        methodology={
            "id": meth.id,
            "version": meth.version,
            "digest": meth.digest,
            "title": meth.title.get(lang),
        },
        level=str(s["level"]),
        level_name=meth.levels[rank].name.get(lang),
        score=float(s["score"]),
        level_from=meth.levels[rank].min_score,
        next_level=nxt.code if nxt else None,
        next_from=nxt.min_score if nxt else None,
        floor_reason=floor,
        targeted=bool(s["targeted"]),
        uncertain_members=int(s["uncertain_members"] or 0),
        indicators=len(meth.indicators),
        deprivations=deprivations,
        situations=[
            {"id": x, "name": sit_names.get(x, x), "legal_basis": sit_basis.get(x, "")} for x in sorted(sits)
        ],
    )


def _feeds(ind: Indicator) -> list[str]:
    """The feeds whose records back ``ind`` (through its selections): where a record's absence counts."""
    return sorted({SELECTION[name].feed for name in compute.selections_of(ind)})


def _role(source: Source, lang: str) -> str:
    """The member a record is about, by role in the family (never by name)."""
    return ROLES.get(source.role, {}).get(lang, source.role or source.person_id)


def render(ex: Explanation, max_records: int = 5) -> str:
    """The explanation as text for a terminal or a letter."""
    lang = ex.lang

    def t(key: str) -> str:
        return LABELS[key][lang]

    lines = [
        f"{t('family')} {ex.family_id}, {t('as_of')} {ex.as_of}",
        f"{t('methodology')}: {ex.methodology['title']} "
        f"({ex.methodology['id']}, {ex.methodology['version']})",
        f"{t('level')}: {ex.level_name}",
        f"{t('score')}: {ex.score:.3f} ({t('from')} {ex.level_from:.2f}"
        + (f"; {t('next')} {ex.next_level}: {ex.next_from:.2f}" if ex.next_level else "")
        + ")",
    ]
    if ex.floor_reason:
        lines.append(f"{t('floor')}: {ex.floor_reason}")
    if ex.uncertain_members:
        lines.append(t("uncertain"))
    lines.append(t("summary").format(k=len(ex.deprivations), n=ex.indicators))
    lines.append("")
    lines.append(f"{t('why')}:" if ex.deprivations else t("none"))
    for d in ex.deprivations:
        if d.unit == "person":
            value = f"{int(d.value or 0)} {t('members')}"
        else:
            value = f"{t('value')} {d.value:.2f}" if d.value is not None else ""
        domain = DOMAINS.get(d.domain, {}).get(lang, d.domain)
        lines.append(f"  • {d.name} [{domain}] — {value}; {t('share')} {d.weight * 100:.1f} %")
        lines.append(f"    {d.description}")
        if d.sources:
            shown = d.sources[:max_records]
            recs = "; ".join(
                f"{s.feed} #{s.record_key} ({t('delivery')} {s.period}, {_role(s, lang)})" for s in shown
            )
            more = f" (+{len(d.sources) - len(shown)})" if len(d.sources) > len(shown) else ""
            lines.append(f"    {t('records')}: {recs}{more}")
        if d.checked:
            lines.append(
                f"    {t('checked')}: "
                + ", ".join(f"{f} ({t('delivery')} {p})" for f, p in d.checked.items())
            )
    if ex.situations:
        lines.append("")
        lines.append(f"{t('situations')}:")
        lines.extend(
            f"  • {s['name']} ({s['legal_basis']})" if s["legal_basis"] else f"  • {s['name']}"
            for s in ex.situations
        )
    lines.append("")
    lines.append(t("contest"))
    return "\n".join(lines)
