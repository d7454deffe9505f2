"""The shipped indicator catalogue and its generated documentation.

The catalogue (``methodology/wellbeing/indicators.toml``) must cover every domain of the methodology with
names and descriptions in Kazakh, Russian and English; ``docs/methodology/indicators.md`` and
``indicators.ru.md`` must be exactly what :func:`familycard.indicators.docs.render` writes from the
catalogue and the fact vocabulary (``python -m familycard.indicators.docs`` rewrites them), and every fact
needs a Russian description.
"""

from __future__ import annotations

import re

import pytest

from familycard.indicators import docs
from familycard.indicators.facts import DERIVED_FACTS, FAMILY_FACTS, PERSON_FACTS
from familycard.indicators.methodology import DOMAINS, LANGS, load_methodology

METH = load_methodology("v1")


def test_catalogue_has_at_least_80_indicators() -> None:
    assert len(METH.indicators) >= 80


def test_every_domain_is_used() -> None:
    used = {i.domain for i in METH.indicators}
    assert used == set(DOMAINS), f"domains without indicators: {sorted(set(DOMAINS) - used)}"


@pytest.mark.parametrize("lang", LANGS)
def test_every_indicator_is_named_and_described(lang: str) -> None:
    missing = [
        i.id for i in METH.indicators if not i.name.get(lang).strip() or not i.description.get(lang).strip()
    ]
    assert not missing, f"indicators without a {lang} name or description: {missing}"


def test_translations_differ() -> None:
    same = [i.id for i in METH.indicators if len({i.name.kk, i.name.ru, i.name.en}) < 3]
    assert not same, f"indicators whose names are not translated: {same}"


def test_weights_are_between_1_and_4() -> None:
    bad = [(i.id, i.catalogue_weight) for i in METH.indicators if not 1 <= i.catalogue_weight <= 4]
    assert not bad


def test_situations_are_named() -> None:
    assert len(METH.situations) >= 10
    for s in METH.situations:
        for lang in LANGS:
            assert s.name.get(lang).strip(), (s.id, lang)
            assert s.legal_basis.get(lang).strip(), (s.id, lang)
        # the same article cited in each language
        article = re.search(r"art\. (\d+)", s.legal_basis.en)
        assert article, s.id
        assert f"ст. {article.group(1)}" in s.legal_basis.ru, s.id
        assert f"{article.group(1)}-бап" in s.legal_basis.kk, s.id
    assert any(s.when is None for s in METH.situations), "unobservable situations are listed too"


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_docs_are_current(lang: str) -> None:
    path = docs.PATHS[lang]
    assert path.read_text(encoding="utf-8") == docs.render(lang), (
        f"{path.name} is out of date: run `python -m familycard.indicators.docs`"
    )


def test_docs_name_every_indicator_and_fact() -> None:
    for lang in ("en", "ru"):
        text = docs.render(lang)
        for i in METH.indicators:
            assert f"`{i.id}`" in text, (lang, i.id)
        for f in (*PERSON_FACTS, *FAMILY_FACTS, *DERIVED_FACTS):
            assert f"`{f.name}`" in text, (lang, f.name)


def test_every_fact_is_described_in_russian() -> None:
    facts = {(f.unit, f.name) for f in (*PERSON_FACTS, *FAMILY_FACTS, *DERIVED_FACTS)}
    missing = sorted(facts - set(docs.FACT_RU))
    stale = sorted(set(docs.FACT_RU) - facts)
    assert not missing, f"facts without a Russian description in FACT_RU: {missing}"
    assert not stale, f"FACT_RU describes facts that do not exist: {stale}"
    assert all(v.strip() for v in docs.FACT_RU.values())
