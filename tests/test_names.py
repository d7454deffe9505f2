"""Tests for the name pools, spelling, typos (familycard.synth.names) and name keys (identity.normalize)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from familycard.identity.normalize import normalize_array, normalize_name
from familycard.synth import names as N
from familycard.synth.names import (
    FEMALE,
    GIVEN,
    LATIN_SYSTEMS,
    MALE,
    SURNAME,
    apply_array,
    female_surname,
    given_weights,
    kk_to_ru,
    patronymic,
    pick,
    surname_weights,
    to_latin,
    typo,
    variants,
)

MIN_GIVEN = {0: 150, 1: 100, 2: 30}
MIN_SURNAME = {0: 200, 1: 150, 2: 40}
KK_LETTERS = "әғқңөұүһі"


def _all_pool_names() -> list[str]:
    out: set[str] = set()
    for pools in (GIVEN, SURNAME):
        for arr in pools.values():
            out.update(arr.tolist())
    return sorted(out)


def _forms(name: str) -> list[str]:
    return [name, kk_to_ru(name), *(to_latin(name, s) for s in LATIN_SYSTEMS)]


# --- pools -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("culture", [0, 1, 2])
@pytest.mark.parametrize("sex", [MALE, FEMALE])
def test_pool_sizes_unique_and_weights(culture: int, sex: int) -> None:
    g, s = GIVEN[(culture, sex)], SURNAME[(culture, sex)]
    assert g.dtype == object and s.dtype == object
    assert len(g) >= MIN_GIVEN[culture]
    assert len(s) >= MIN_SURNAME[culture]
    assert len(set(g.tolist())) == len(g)
    assert len(set(s.tolist())) == len(s)
    # no two pool entries are spellings of one name
    assert len({normalize_name(x) for x in g}) == len(g)
    assert len({normalize_name(x) for x in s}) == len(s)
    for arr, w in ((g, given_weights[(culture, sex)]), (s, surname_weights[(culture, sex)])):
        assert w.shape == arr.shape
        assert np.all(w > 0)
        assert np.all(np.diff(w) <= 0)  # Zipf: most frequent first
        assert w.sum() == pytest.approx(1.0)
    assert all(isinstance(x, str) and x and x == x.strip() and " " not in x for x in (*g, *s))


def test_pools_are_read_only() -> None:
    with pytest.raises(ValueError):
        GIVEN[(0, MALE)][0] = "x"


@pytest.mark.parametrize("culture", [0, 1, 2])
def test_surnames_parallel(culture: int) -> None:
    male, fem = SURNAME[(culture, MALE)], SURNAME[(culture, FEMALE)]
    assert male.shape == fem.shape
    for m, f in zip(male, fem, strict=True):
        assert f == female_surname(m)
        assert f == m or f.startswith(m[:-2])


def test_surname_forms() -> None:
    i = list(SURNAME[(0, MALE)]).index("Әбдірахманов")
    assert SURNAME[(0, FEMALE)][i] == "Әбдірахманова"
    i = list(SURNAME[(1, MALE)]).index("Иванов")
    assert SURNAME[(1, FEMALE)][i] == "Иванова"
    i = list(SURNAME[(2, MALE)]).index("Ким")
    assert SURNAME[(2, FEMALE)][i] == "Ким"
    assert female_surname("Малиновский") == "Малиновская"
    assert female_surname("Толстой") == "Толстая"
    assert female_surname("Шевченко") == "Шевченко"
    assert female_surname("Черных") == "Черных"


def test_kazakh_letters_present() -> None:
    kk = " ".join([*GIVEN[(0, MALE)], *GIVEN[(0, FEMALE)], *SURNAME[(0, MALE)]]).lower()
    for letter in KK_LETTERS:
        assert letter in kk, letter
    for name in ("Нұрлан", "Қайрат", "Ғалым", "Ерғали", "Өмірзақ", "Бақыт"):
        assert name in GIVEN[(0, MALE)]
    for name in ("Әлия", "Гүлнұр", "Айгүл"):
        assert name in GIVEN[(0, FEMALE)]


def test_pick() -> None:
    pool = GIVEN[(1, MALE)]
    idx = np.array([0, 2, 0, len(pool) - 1])
    out = pick(pool, idx)
    assert out.tolist() == [pool[0], pool[2], pool[0], pool[-1]]
    out[0] = "changed"  # a copy, not a view of the read-only pool
    assert pool[0] != "changed"


# --- patronymics -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("father", "culture", "sex", "style", "expected"),
    [
        ("Нұрлан", 0, MALE, None, "Нұрланұлы"),
        ("Нұрлан", 0, FEMALE, None, "Нұрланқызы"),
        ("Нұрлан", 0, MALE, "ru", "Нұрланович"),
        ("Нұрлан", 0, FEMALE, "ru", "Нұрлановна"),
        ("Ерғали", 0, MALE, "ru", "Ерғалиевич"),
        ("Мұса", 0, FEMALE, "ru", "Мұсаевна"),
        ("Абай", 0, MALE, "ru", "Абаевич"),
        ("Иван", 1, MALE, None, "Иванович"),
        ("Иван", 1, FEMALE, None, "Ивановна"),
        ("Иван", 1, MALE, "kk", "Иванұлы"),
        ("Сергей", 1, MALE, None, "Сергеевич"),
        ("Сергей", 1, FEMALE, None, "Сергеевна"),
        ("Николай", 1, FEMALE, None, "Николаевна"),
        ("Илья", 1, MALE, None, "Ильич"),
        ("Илья", 1, FEMALE, None, "Ильинична"),
        ("Никита", 1, MALE, None, "Никитич"),
        ("Никита", 1, FEMALE, None, "Никитична"),
        ("Кузьма", 1, FEMALE, None, "Кузьминична"),
        ("Юрий", 1, MALE, None, "Юрьевич"),
        ("Василий", 1, FEMALE, None, "Васильевна"),
        ("Дмитрий", 1, MALE, None, "Дмитриевич"),
        ("Игорь", 1, MALE, None, "Игоревич"),
        ("Лев", 1, MALE, None, "Львович"),
        ("Павел", 1, FEMALE, None, "Павловна"),
        ("Михаил", 1, MALE, None, "Михайлович"),
        ("Абдулла", 2, MALE, None, "Абдуллаевич"),
        ("Рустам", 2, FEMALE, None, "Рустамовна"),
        ("", 0, MALE, None, ""),
    ],
)
def test_patronymic(father: str, culture: int, sex: int, style: str | None, expected: str) -> None:
    assert patronymic(father, culture, sex, style) == expected  # type: ignore[arg-type]


def test_patronymic_every_pool_name() -> None:
    for (culture, pool_sex), pool in GIVEN.items():
        if pool_sex != MALE:
            continue
        for father in pool:
            for sex in (MALE, FEMALE):
                for style in ("kk", "ru"):
                    p = patronymic(father, culture, sex, style)
                    assert len(p) > len(father) - 2
                    assert normalize_name(p)  # normalisable, non-empty
    with pytest.raises(ValueError):
        patronymic("Иван", 1, 3)
    with pytest.raises(ValueError):
        patronymic("Иван", 1, 1, "de")  # type: ignore[arg-type]


# --- transliteration ---------------------------------------------------------------------------------


def test_kk_to_ru() -> None:
    assert kk_to_ru("Қайрат") == "Кайрат"
    assert kk_to_ru("Нұрлан") == "Нурлан"
    assert kk_to_ru("Әлия") == "Алия"
    assert kk_to_ru("ӘБДІРАХМАНОВА") == "АБДИРАХМАНОВА"
    assert kk_to_ru("әғқңөұүһі ӘҒҚҢӨҰҮҺІ") == "агкноуухи АГКНОУУХИ"
    assert kk_to_ru("Иванов") == "Иванов"


@pytest.mark.parametrize(
    ("name", "kz2021", "passport", "ru_gost"),
    [
        ("Қайрат", "Qairat", "KAIRAT", "Kayrat"),
        ("Нұрлан", "Nūrlan", "NURLAN", "Nurlan"),
        ("Әлия", "Äliia", "ALIIA", "Aliya"),
        ("Ғалым", "Ğalym", "GALYM", "Galym"),
        ("Шыңғыс", "Şyñğys", "SHYNGYS", "Shyngys"),
        ("Іңкәр", "Iñkär", "INKAR", "Inkar"),
        ("Өмірзақ", "Ömırzaq", "OMIRZAK", "Omirzak"),
        ("Гүлнұр", "Gülnūr", "GULNUR", "Gulnur"),
        ("Зуһра", "Zuhra", "ZUHRA", "Zukhra"),
        ("Жұмабаев", "Jūmabaev", "ZHUMABAEV", "Zhumabaev"),
        ("Иван", "İvan", "IVAN", "Ivan"),
        ("Юрий", "İurii", "IURII", "Yuriy"),
        ("Фёдор", "Fiodor", "FEDOR", "Fedor"),
        ("Щербаков", "Şşerbakov", "SHCHERBAKOV", "Shcherbakov"),
        ("Чернышёв", "Çernyşiov", "CHERNYSHEV", "Chernyshev"),
        ("Цой", "Tsoi", "TSOI", "Tsoy"),
        ("Хегай", "Hegai", "KHEGAI", "Khegay"),
        ("Ильин", "İlin", "ILIN", "Ilin"),
        ("ЖАНАР", "JANAR", "ZHANAR", "ZHANAR"),
        ("Иванова-Петрова", "İvanova-Petrova", "IVANOVA-PETROVA", "Ivanova-Petrova"),
    ],
)
def test_to_latin(name: str, kz2021: str, passport: str, ru_gost: str) -> None:
    assert to_latin(name, "kz2021") == kz2021
    assert to_latin(name, "passport") == passport
    assert to_latin(name, "ru_gost") == ru_gost


def test_to_latin_unknown_system() -> None:
    with pytest.raises(ValueError):
        to_latin("Иван", "iso9")  # type: ignore[arg-type]


def test_passport_is_ascii_upper() -> None:
    for name in _all_pool_names():
        p = to_latin(name, "passport")
        assert p.isascii() and p == p.upper() and p.isalpha(), (name, p)
        g = to_latin(name, "ru_gost")
        assert g.isascii() and g.isalpha(), (name, g)


def test_variants() -> None:
    v = variants("Айгүл")
    assert v[:2] == ["Айгул", "Айгуль"]
    assert "AIGUL" in v and "Aigül" in v
    assert "Мухаммед" in variants("Мұхамед")
    assert "Федор" in variants("Фёдор")
    assert "Yerlan" in variants("Ерлан")
    assert "Абдирахманов" in variants("Әбдірахманов")
    assert variants("Нұрлан") == variants("Нұрлан")  # deterministic
    for name in ("Нұрлан", "Иванов", "Ким", "Nurlan"):
        vs = variants(name)
        assert name not in vs
        assert len(vs) == len(set(vs))
    for name in _all_pool_names():
        vs = variants(name)
        assert vs and name not in vs
        if name.endswith(("ов", "ев")):  # surname endings are kept in every spelling
            assert all(v.lower().endswith(("ов", "ев", "ov", "ev")) for v in vs), (name, vs)


# --- normalisation -----------------------------------------------------------------------------------


def test_normalize_examples() -> None:
    for s in ("Нұрлан", "Нурлан", "Nurlan", "NURLAN", "Nūrlan", "  nurlan ", "НҰРЛАН"):
        assert normalize_name(s) == "nurlan", s
    keys = {normalize_name(s) for s in ("Әлия", "Алия", "Aliya", "Älia", "ALIIA", "Äliia", "Alia")}
    assert len(keys) == 1
    assert normalize_name("Қайрат") == normalize_name("Qaırat") == normalize_name("Kayrat") == "kairat"
    assert normalize_name("Фёдор") == normalize_name("Федор") == normalize_name("Fiodor") == "fedor"
    assert normalize_name("Айгуль") == normalize_name("Айгүл")
    assert normalize_name("Мухаммед") == normalize_name("Мұхамед")
    assert normalize_name("Yerlan") == normalize_name("Ерлан")
    assert normalize_name("Иванова-Петрова") == normalize_name("Иванова Петрова".replace(" ", ""))
    assert normalize_name("O'Brien") == "obrien"
    assert normalize_name("Жанна   Ивановна") == "jana ivanovna"
    assert normalize_name("") == ""


def test_normalize_round_trip_every_pool_name() -> None:
    """kk form, ru form, every Latin form and every variant of every pool name share one key."""
    failures = []
    names = _all_pool_names()
    for name in names:
        key = normalize_name(name)
        for form in (*_forms(name), *variants(name), name.upper(), name.lower()):
            if normalize_name(form) != key:
                failures.append((name, form, normalize_name(form), key))
    assert failures == [], failures[:10]
    assert len(names) > 1000


def test_normalize_patronymics_and_full_names() -> None:
    for father in GIVEN[(0, MALE)][:40]:
        for sex in (MALE, FEMALE):
            p = patronymic(father, 0, sex)
            key = normalize_name(p)
            assert {normalize_name(f) for f in _forms(p)} == {key}
    full = "Әбдірахманова Әлия Нұрланқызы"
    assert {normalize_name(f) for f in _forms(full)} == {"abdirahmanova alia nurlankizi"}


def test_normalize_array() -> None:
    values = np.array(["Нұрлан", None, "NURLAN", "Әлия", "Aliya", "Нұрлан"], dtype=object)
    out = normalize_array(values)
    assert out.dtype == object and out.shape == values.shape
    assert out.tolist() == ["nurlan", "", "nurlan", "alia", "alia", "nurlan"]
    assert normalize_array(np.array(["Қайрат", "Kairat"])).tolist() == ["kairat", "kairat"]
    assert normalize_array(np.array([], dtype=object)).shape == (0,)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20))
@example("Ӫ")  # a mark over a Kazakh letter: stripping it reveals ө, which is then transliterated
def test_normalize_idempotent_and_clean(s: str) -> None:
    k = normalize_name(s)
    assert normalize_name(k) == k
    assert k == k.strip() and "  " not in k
    assert not any(c in k for c in "-'’ʼ")


# --- typos -------------------------------------------------------------------------------------------

_CYR = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяәғқңөұүһіАБВГДЕЖЗИЙКЛМНОПРСТУФХЭЮЯӘҒҚҢӨҰҮҺІ"


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(st.text(min_size=1, max_size=25), st.text(alphabet=_CYR + " -", min_size=1, max_size=25)),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_typo_always_differs_and_is_deterministic(s: str, u: float) -> None:
    t = typo(s, u)
    assert t != s
    assert abs(len(t) - len(s)) <= 1
    assert typo(s, u) == t


def test_typo_kinds() -> None:
    s = "Нурлан"
    kinds = {typo(s, u) for u in np.linspace(0, 0.999, 400)}
    assert len(kinds) > 20
    assert "Нурлн" in kinds or "Нуран" in kinds  # deletion
    assert any(len(k) == len(s) + 1 for k in kinds)  # duplication
    assert "Нрулан" in kinds or "Нурлна" in kinds  # transposition
    # substitution by a ЙЦУКЕН neighbour keeps the length and the script
    subs = {typo(s, u) for u in np.linspace(0.75, 0.999, 200)}
    assert all(len(k) == len(s) for k in subs)
    assert all(all("\u0400" <= c <= "\u04ff" for c in k) for k in subs)
    latin = {typo("Nurlan", u) for u in np.linspace(0.75, 0.999, 200)}
    assert all(k.isascii() for k in latin)
    assert "Nurlam" in latin or "Nurlab" in latin or "Nurkan" in latin
    # equal letters cannot be transposed or have no neighbour: still a change
    assert typo("аааа", 0.6) != "аааа"
    assert typo("11", 0.9) != "11"
    assert typo("", 0.3) == ""
    assert typo("Ә", 0.8) == "А"


# --- vectorised helpers ------------------------------------------------------------------------------


def test_apply_array_only_masked_rows() -> None:
    rng = np.random.default_rng(7)
    pool = GIVEN[(0, FEMALE)]
    values = pick(pool, rng.integers(0, len(pool), size=5000))
    mask = rng.random(5000) < 0.03
    u = rng.random(5000)
    out = apply_array(typo, values, mask, u)
    assert out.dtype == object and out.shape == values.shape
    assert np.array_equal(out[~mask], values[~mask])
    assert np.all(out[mask] != values[mask])
    assert out[mask].tolist() == [typo(v, x) for v, x in zip(values[mask], u[mask], strict=True)]
    again = apply_array(typo, values, mask, u)
    assert np.array_equal(out, again)
    ru = apply_array(kk_to_ru, values, mask)
    assert np.array_equal(ru[~mask], values[~mask])
    assert ru[mask].tolist() == [kk_to_ru(v) for v in values[mask]]


def test_apply_array_does_not_call_unmasked_and_accepts_unicode_dtype() -> None:
    calls: list[str] = []

    def spy(s: str) -> str:
        calls.append(s)
        return s + "!"

    values = np.array(["а", "б", "в", "г"])  # dtype <U1: results longer than the input width
    out = apply_array(spy, values, np.array([False, True, False, True]))
    assert calls == ["б", "г"]
    assert out.tolist() == ["а", "б!", "в", "г!"]
    assert values.tolist() == ["а", "б", "в", "г"]
    with pytest.raises(ValueError):
        apply_array(spy, values, np.array([True]))
    with pytest.raises(ValueError):
        apply_array(typo, values, np.ones(4, bool), np.zeros(3))


def test_module_constants() -> None:
    assert N.CULTURES == (0, 1, 2)
    assert set(LATIN_SYSTEMS) == {"kz2021", "passport", "ru_gost"}
    assert set(GIVEN) == set(SURNAME) == set(given_weights) == set(surname_weights)
