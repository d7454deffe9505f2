"""Tests for the KATO territory model and the bundled region boundaries."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from familycard.geo.territory import (
    BOUNDARY_NAMES,
    LEVELS,
    REGION_BY_CODE,
    REGIONS,
    Region,
    Territory,
    build_territory,
    kk_to_latin,
    kk_to_ru,
    level_of,
    load_boundaries,
    make_territory,
    region_index,
)

EXPECTED_CODES = (
    "10 11 15 19 23 27 31 33 35 39 43 47 55 59 61 62 63 71 75 79".split()  # noqa: SIM905
)
TARGET_THOUSANDS = {
    "10": 603, "11": 787, "15": 925, "19": 1512, "23": 700, "27": 695, "31": 1219, "33": 696,
    "35": 1130, "39": 831, "43": 831, "47": 779, "55": 752, "59": 527, "61": 2134, "62": 221,
    "63": 727, "71": 1423, "75": 2229, "79": 1222,
}  # fmt: skip


@pytest.fixture(scope="module")
def terr() -> Territory:
    return build_territory()


@pytest.fixture(scope="module")
def units(terr: Territory) -> pa.Table:
    return terr.to_arrow()


# -- regions -----------------------------------------------------------------------------------------


def test_twenty_regions_with_codes_and_iso() -> None:
    assert [r.code for r in REGIONS] == list(EXPECTED_CODES)
    for r in REGIONS:
        assert r.kato == r.code + "0000000"
        assert r.iso == f"KZ-{r.code}"
        assert r.name_kk and r.name_ru and r.name_en and r.centre_en
        assert r.is_city == (r.code in {"71", "75", "79"})
        assert r.population == TARGET_THOUSANDS[r.code] * 1000
    assert REGION_BY_CODE["10"].name_en == "Abai Region"
    assert REGION_BY_CODE["10"].name_kk == "Абай облысы"
    assert REGION_BY_CODE["10"].name_ru == "Абайская область"
    assert REGION_BY_CODE["19"].centre_en == "Konayev"
    assert REGION_BY_CODE["71"].name_kk == REGION_BY_CODE["71"].name_ru == "Астана"
    assert region_index("799999999") == 19


def test_region_validates_its_codes() -> None:
    with pytest.raises(ValueError):
        Region("10", "110000000", "KZ-10", "a", "b", "c", "d", False, 1, 0.5)


def test_national_rural_share_from_region_parameters() -> None:
    total = sum(r.population for r in REGIONS)
    rural = sum(r.population * r.rural_share for r in REGIONS)
    assert rural / total == pytest.approx(0.40, abs=0.01)
    assert all(r.rural_share == 0.0 for r in REGIONS if r.is_city)


# -- codes and tree ----------------------------------------------------------------------------------


def test_codes_are_nine_digits_unique_and_sorted(terr: Territory) -> None:
    codes = terr.unit_kato.tolist()
    assert all(len(c) == 9 and c.isascii() and c.isdigit() for c in codes)
    assert len(set(codes)) == len(codes)
    assert codes == sorted(codes)


def test_parents_exist_and_match_digit_groups(terr: Territory) -> None:
    for kato, parent, level in zip(
        terr.unit_kato.tolist(), terr.unit_parent.tolist(), terr.unit_level.tolist(), strict=True
    ):
        assert level_of(kato) == level
        if level == "region":
            assert parent == ""
            continue
        up = LEVELS[LEVELS.index(level) - 1]
        assert parent == Territory.parent(kato, up)
        assert terr.exists(parent)
        assert terr.level(parent) == up


def test_settlement_arrays_consistent(terr: Territory) -> None:
    assert terr.settlement_kato.tolist() == sorted(terr.settlement_kato.tolist())
    assert (terr.unit_kato[terr.settlement_unit] == terr.settlement_kato).all()
    assert (terr.unit_level[terr.settlement_unit] == "settlement").all()
    assert terr.count("settlement") == terr.n_settlements
    assert all(int(k[6:]) >= 1 for k in terr.settlement_kato.tolist())
    codes = np.array([r.code for r in REGIONS])
    assert (codes[terr.settlement_region] == np.array([k[:2] for k in terr.settlement_kato.tolist()])).all()
    kinds = terr.unit_kind[terr.settlement_unit]
    assert (terr.settlement_rural == (kinds == "village")).all()


def test_unit_counts_in_range(terr: Territory) -> None:
    rural_districts = terr.count("district", "district")
    assert 150 <= rural_districts <= 190
    assert terr.count("district", "city_regional") == 17
    assert terr.count("district", "city_district") == 5 + 8 + 5
    assert 2000 <= terr.count("okrug", "rural_okrug") <= 2600
    assert 5500 <= terr.count("settlement", "village") <= 7000
    assert 17 <= terr.count("settlement", "town") <= 250
    is_district = (terr.unit_level == "district") & (terr.unit_kind == "district")
    for r in REGIONS:
        in_region = np.char.startswith(terr.unit_kato, r.code)
        n = int((is_district & in_region).sum())
        towns = int((in_region & (terr.unit_kind == "town") & (terr.unit_level == "settlement")).sum())
        if r.is_city:
            assert n == 0 and towns == 0
            assert not terr.settlement_rural[terr.settlement_region == region_index(r.code)].any()
        else:
            assert 8 <= n <= 20, r.code
            assert towns >= 1, r.code


def test_villages_per_okrug_between_one_and_six(units: pa.Table) -> None:
    villages = units.filter(pc.equal(units["kind"], "village"))
    per_okrug = villages.group_by("parent_kato").aggregate([("kato", "count")])["kato_count"].to_numpy()
    assert per_okrug.min() >= 1 and per_okrug.max() <= 6
    okrugs = units.filter(pc.equal(units["kind"], "rural_okrug"))
    assert len(per_okrug) == okrugs.num_rows


def test_names_unique_within_parent(units: pa.Table) -> None:
    for lang in ("kk", "ru", "en"):
        col = f"name_{lang}"
        grouped = units.group_by("parent_kato").aggregate([(col, "count"), (col, "count_distinct")])
        assert grouped[f"{col}_count"].equals(grouped[f"{col}_count_distinct"]), lang


def test_real_centre_names(terr: Territory) -> None:
    assert terr.name("101010001", "en") == "Semey"
    assert terr.name("271010001", "ru") == "Уральск"
    assert terr.name("351010001", "kk") == "Қарағанды"
    assert terr.name("631010001", "ru") == "Усть-Каменогорск"
    assert terr.name("751100000", "en") == "Alatau District"
    with pytest.raises(ValueError):
        terr.name("100000000", "de")  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        terr.name("109999999")


# -- weights -----------------------------------------------------------------------------------------


def test_weights_sum_to_one_and_are_positive(terr: Territory) -> None:
    assert terr.settlement_weight.sum() == pytest.approx(1.0, abs=1e-12)
    assert (terr.settlement_weight > 0).all()
    regions = terr.unit_level == "region"
    assert terr.unit_weight[regions].sum() == pytest.approx(1.0, abs=1e-12)


def test_rural_share(terr: Territory) -> None:
    share = terr.settlement_weight[terr.settlement_rural].sum()
    assert share == pytest.approx(0.40, abs=0.01)


def test_region_population_and_rural_shares_match_targets(terr: Territory) -> None:
    total = sum(TARGET_THOUSANDS.values())
    for i, r in enumerate(REGIONS):
        in_region = terr.settlement_region == i
        share = terr.settlement_weight[in_region].sum()
        assert abs(share - TARGET_THOUSANDS[r.code] / total) < 1e-6, r.code
        rural = terr.settlement_weight[in_region & terr.settlement_rural].sum()
        assert rural / share == pytest.approx(r.rural_share, abs=1e-9), r.code
        assert terr.unit_weight[terr.unit_index(r.kato)] == pytest.approx(share, abs=1e-12)


def test_centre_is_the_largest_settlement_of_its_region(terr: Territory) -> None:
    for i, r in enumerate(REGIONS):
        if r.is_city:
            continue
        w = np.where(terr.settlement_region == i, terr.settlement_weight, 0.0)
        assert terr.settlement_kato[int(w.argmax())] == f"{r.code}1010001"


def test_sampling_reproduces_region_shares(terr: Territory) -> None:
    rng = np.random.default_rng(7)
    idx = terr.sample_settlements(rng, 200_000)
    assert idx.dtype == np.int64 and idx.min() >= 0 and idx.max() < terr.n_settlements
    got = np.bincount(terr.settlement_region[idx], minlength=len(REGIONS)) / idx.size
    want = np.bincount(terr.settlement_region, weights=terr.settlement_weight, minlength=len(REGIONS))
    assert np.abs(got - want).max() < 0.01
    assert terr.settlement_rural[idx].mean() == pytest.approx(0.40, abs=0.01)
    assert terr.sample_settlements(rng, 0).size == 0


def test_sampling_is_reproducible(terr: Territory) -> None:
    a = terr.sample_settlements(np.random.default_rng(1), 1000)
    b = terr.sample_settlements(np.random.default_rng(1), 1000)
    assert (a == b).all()


# -- lookups -----------------------------------------------------------------------------------------


def test_parent_and_region_of(terr: Territory) -> None:
    kato = str(terr.settlement_kato[1234])
    assert Territory.parent(kato, "okrug") == kato[:6] + "000"
    assert Territory.parent(kato, "district") == kato[:4] + "00000"
    assert Territory.parent(kato, "region") == kato[:2] + "0000000"
    assert Territory.parent(kato, "settlement") == kato
    assert terr.region_of(kato).code == kato[:2]
    with pytest.raises(ValueError):
        Territory.parent(kato[:4] + "00000", "okrug")
    with pytest.raises(ValueError):
        Territory.parent("12345", "region")
    with pytest.raises(KeyError):
        terr.region_of("990000000")
    parents = Territory.parent_array(terr.settlement_kato, "district")
    assert parents.tolist() == [k[:4] + "00000" for k in terr.settlement_kato.tolist()]
    assert terr.exists_array(parents).all()
    with pytest.raises(ValueError):
        Territory.parent_array(["1234567890"], "region")


def test_exists(terr: Territory) -> None:
    assert terr.exists("100000000")
    assert not terr.exists("990000000")
    probe = ["100000000", "990000000", str(terr.settlement_kato[5]), "10", "1000000000", "", "10101000१"]
    assert terr.exists_array(probe).tolist() == [True, False, True, False, False, False, False]
    assert terr.exists_array(np.array(probe, dtype=object)).tolist()[:3] == [True, False, True]
    assert terr.exists_array([]).size == 0
    assert terr.settlement_index(["101010001", "100000000"]).tolist() == [
        int(np.flatnonzero(terr.settlement_kato == "101010001")[0]),
        -1,
    ]


def test_arrays_are_read_only(terr: Territory) -> None:
    with pytest.raises(ValueError):
        terr.settlement_weight[0] = 1.0


def test_to_arrow(units: pa.Table, terr: Territory) -> None:
    assert units.num_rows == terr.n_units
    assert units.column_names == [
        "kato", "parent_kato", "level", "kind", "name_kk", "name_ru", "name_en", "rural", "weight",
    ]  # fmt: skip
    assert units["parent_kato"].null_count == 20
    assert units["rural"].null_count == terr.n_units - terr.n_settlements
    assert terr.settlements_to_arrow().num_rows == terr.n_settlements


# -- build -------------------------------------------------------------------------------------------


def test_build_is_cached_and_deterministic(terr: Territory) -> None:
    assert build_territory() is terr
    start = time.perf_counter()
    a = make_territory()
    elapsed = time.perf_counter() - start
    b = make_territory()
    assert a.to_arrow().equals(b.to_arrow())
    assert a.to_arrow().equals(terr.to_arrow())
    assert (a.settlement_weight == b.settlement_weight).all()
    assert elapsed < 1.0


def test_transliteration() -> None:
    assert kk_to_ru("Әуезов Ғабит Үшқоңыр Өскемен Һ і") == "Ауезов Габит Ушконыр Оскемен Х и"
    assert kk_to_latin("Қызылжар") == "Kyzylzhar"
    assert kk_to_latin("Шоқан Уәлиханов") == "Shokan Ualikhanov"
    assert kk_to_latin("Жаңаөзен") == "Zhanaozen"


# -- boundaries --------------------------------------------------------------------------------------


def test_boundaries_geojson() -> None:
    gj = load_boundaries()
    assert gj["type"] == "FeatureCollection"
    features = gj["features"]
    assert len(features) == 20
    codes = sorted(f["properties"]["kato"] for f in features)
    assert codes == sorted(EXPECTED_CODES)
    for f in features:
        props = f["properties"]
        assert props["iso"] == REGION_BY_CODE[props["kato"]].iso
        assert BOUNDARY_NAMES[props["ADM1_EN"]] == props["kato"]
        assert props["ADM1_PCODE"].startswith("KAZ")
        assert f["geometry"]["type"] in {"Polygon", "MultiPolygon"}
    first = features[0]["geometry"]["coordinates"]
    while isinstance(first[0], list):
        first = first[0]
    assert all(round(x, 4) == x for x in first)
