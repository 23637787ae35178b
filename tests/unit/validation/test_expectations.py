"""Suites derived from the data model: what they check, reviewable files, hand-tuning that survives."""

from __future__ import annotations

import json
from pathlib import Path

from hdh_migrate.cli import main as cli_main
from hdh_migrate.validation.expectations import build_suite, derive_expectations, write_suite_from_schema
from hdh_migrate.validation.schema import DEFAULT_SCHEMA, load_schema
from tests.helpers import ROOT

SF = load_schema()


def _find(exps: list[dict], type_: str, column: str | None = None) -> list[dict]:
    return [e for e in exps if e["type"] == type_ and (column is None or e["kwargs"].get("column") == column)]


def test_committed_suites_are_up_to_date_with_the_schema(tmp_path: Path) -> None:
    """Regenerating a committed suite changes nothing (hand-tuned entries included)."""
    for name in ("IR_BEN_R", "ER_PRS_F", "T_MCOaaB", "T_MCOaaC"):
        committed = ROOT / "expectations" / f"{name}.json"
        assert committed.exists(), f"run: hdh-migrate expectations from-schema {DEFAULT_SCHEMA} --all"
        copy = tmp_path / f"{name}.json"
        copy.write_text(committed.read_text())
        write_suite_from_schema(SF, name, copy)
        assert json.loads(copy.read_text()) == json.loads(committed.read_text()), name


def test_derived_suite_covers_columns_types_keys_ids_enums_and_ranges() -> None:
    ben = derive_expectations(SF.table("IR_BEN_R"))
    order = _find(ben, "expect_table_columns_to_match_ordered_list")[0]
    assert order["kwargs"]["column_list"] == SF.table("IR_BEN_R").column_names
    assert _find(ben, "expect_column_values_to_be_of_type", "BEN_RNG_GEM")[0]["kwargs"]["type_"] == "int64"
    assert _find(ben, "expect_column_values_to_not_be_null", "BEN_NIR_PSA")
    assert _find(ben, "expect_column_values_to_be_unique", "BEN_NIR_PSA")
    assert _find(ben, "expect_column_values_to_be_unique", "BEN_IDT_ANO")
    pk = _find(ben, "expect_compound_columns_to_be_unique")[0]
    assert pk["kwargs"]["column_list"] == ["BEN_NIR_PSA", "BEN_RNG_GEM"]
    regex = _find(ben, "expect_column_values_to_match_regex", "BEN_NIR_PSA")[0]["kwargs"]["regex"]
    assert regex == "^[0-9A-Z]{17}$"
    lengths = _find(ben, "expect_column_value_lengths_to_be_between", "BEN_NIR_PSA")[0]["kwargs"]
    assert lengths == {"column": "BEN_NIR_PSA", "min_value": 17, "max_value": 17}
    stays = derive_expectations(SF.table("T_MCOaaB"))
    assert _find(stays, "expect_column_values_to_be_in_set", "COD_SEX")[0]["kwargs"]["value_set"] == [
        "1",
        "2",
        "7",
        "8",
        "9",
    ]
    # "" is a missing value of the model, not an allowed code
    assert _find(stays, "expect_column_values_to_be_in_set", "SEJ_COD_CONF")[0]["kwargs"]["value_set"] == ["1", "2"]
    age = _find(stays, "expect_column_values_to_be_between", "AGE_ANN")[0]["kwargs"]
    assert (age["min_value"], age["max_value"]) == (1, 120)
    assert all(e["meta"]["hdh_origin"] == "schema" and e["meta"]["why"] for e in stays)


def test_hand_tuned_expectations_survive_regeneration(tmp_path: Path) -> None:
    out = tmp_path / "T_MCOaaB.json"
    first = write_suite_from_schema(SF, "T_MCOaaB", out)
    doc = json.loads(out.read_text())
    doc["expectations"] += [
        # an addition
        {
            "type": "expect_column_mean_to_be_between",
            "kwargs": {"column": "SEJ_NBJ", "min_value": 0, "max_value": 30},
            "meta": {"hdh_origin": "hand", "why": "DIM: mean stay under a month"},
        },
        # replaces the derived range of AGE_ANN (newborns have AGE_ANN 0 in practice)
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "AGE_ANN", "min_value": 0, "max_value": 120},
            "meta": {"hdh_origin": "hand"},
        },
        # switches a derived check off
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "COD_SEX", "value_set": []},
            "meta": {"hdh_origin": "hand", "hdh_disabled": True},
        },
        # written without any marker: still kept, never silently dropped
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "GHM_24707Z_ACT"}},
    ]
    out.write_text(json.dumps(doc, indent=2))
    again = write_suite_from_schema(SF, "T_MCOaaB", out)
    exps = json.loads(out.read_text())["expectations"]
    assert again.hand_kept == 4 and again.replaced_by_hand == 2
    assert again.derived == first.derived - 2
    assert _find(exps, "expect_column_mean_to_be_between", "SEJ_NBJ")
    ages = _find(exps, "expect_column_values_to_be_between", "AGE_ANN")
    assert [a["kwargs"]["min_value"] for a in ages] == [0]
    assert [e["meta"].get("hdh_disabled") for e in _find(exps, "expect_column_values_to_be_in_set", "COD_SEX")] == [
        True
    ]
    assert _find(exps, "expect_column_values_to_not_be_null", "GHM_24707Z_ACT")[0]["meta"]["hdh_origin"] == "hand"
    # regenerating is stable: same file twice
    before = out.read_text()
    write_suite_from_schema(SF, "T_MCOaaB", out)
    assert out.read_text() == before


def test_cli_from_schema_on_a_table_it_has_never_seen(tmp_path: Path, monkeypatch) -> None:
    schema = tmp_path / "t_lab.json"
    schema.write_text(
        json.dumps(
            {
                "name": "T_LAB_RES",
                "primaryKey": ["PAT_ID", "PRL_DTE"],
                "fields": [
                    {"name": "PAT_ID", "type": "string", "length": "17", "constraints": {"minLength": 17}},
                    {"name": "PRL_DTE", "type": "date"},
                    {"name": "ANA_COD", "type": "string", "length": "4", "constraints": {"pattern": "^[A-Z][0-9]{3}$"}},
                    {"name": "RES_VAL", "type": "number", "constraints": {"minimum": 0}},
                ],
            }
        )
    )
    monkeypatch.chdir(tmp_path)
    assert cli_main(["expectations", "from-schema", str(schema), "--table", "T_LAB_RES"]) == 0
    doc = json.loads((tmp_path / "expectations" / "T_LAB_RES.json").read_text())
    exps = doc["expectations"]
    assert doc["name"] == "T_LAB_RES"
    assert doc["meta"]["hdh"]["columns"] == {
        "PAT_ID": "string",
        "PRL_DTE": "date32[day]",
        "ANA_COD": "string",
        "RES_VAL": "double",
    }
    assert _find(exps, "expect_column_values_to_match_regex", "PAT_ID")[0]["kwargs"]["regex"] == "^[0-9A-Z]{17}$"
    assert _find(exps, "expect_column_values_to_match_regex", "ANA_COD")[0]["kwargs"]["regex"] == "^[A-Z][0-9]{3}$"
    assert _find(exps, "expect_column_values_to_be_between", "RES_VAL")[0]["kwargs"] == {
        "column": "RES_VAL",
        "min_value": 0.0,
    }
    assert _find(exps, "expect_compound_columns_to_be_unique")[0]["kwargs"]["column_list"] == ["PAT_ID", "PRL_DTE"]


def test_build_suite_records_keys_for_the_validator() -> None:
    doc, _ = build_suite(SF.table("ER_PRS_F"), schema=SF)
    meta = doc["meta"]["hdh"]
    assert meta["primary_key"][0] == "DCT_ORD_NUM" and len(meta["primary_key"]) == 9
    assert {
        "fields": ["BEN_NIR_PSA", "BEN_RNG_GEM"],
        "resource": "IR_BEN_R",
        "reference_fields": ["BEN_NIR_PSA", "BEN_RNG_GEM"],
    } in meta["foreign_keys"]
    assert meta["schema_sha256"] == SF.sha256
    assert "generated_at" not in json.dumps(doc)  # no timestamp: regenerating gives the same bytes
