"""The synthetic SNDS generator: the model's shape, foreign keys that hold, determinism, files on the rig."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from hdh_migrate.cli import main as cli_main
from hdh_migrate.dev.seed import generate_rows, seed_table
from hdh_migrate.stores import AzureBlobStore
from hdh_migrate.validation.schema import arrow_schema, load_schema

SF = load_schema()


def _rows(name: str, n: int, **kw: object) -> pa.Table:
    return generate_rows(SF.table(name), 0, n, seed=kw.pop("seed", 3), universe=kw.pop("universe", 500), schemas=SF)


def test_tables_follow_the_published_model() -> None:
    for name, table in SF.tables.items():
        t = _rows(name, 2000)
        assert t.schema == arrow_schema(table), name
        assert t.column_names == table.column_names
        # primary keys are complete and unique
        pk = list(table.primary_key)
        assert all(t.column(c).null_count == 0 for c in pk), name
        keys = set(zip(*(t.column(c).to_pylist() for c in pk), strict=True))
        assert len(keys) == t.num_rows, name
        for f in table.fields:
            col = t.column(f.name)
            enum = [v for v in f.constraints.get("enum") or [] if v != ""]
            if enum:
                assert set(col.drop_null().to_pylist()) <= {type(col.drop_null()[0].as_py())(v) for v in enum}
            if f.minimum is not None and col.null_count < len(col):
                assert pc.min(col).as_py() >= f.minimum, f.name
            if f.maximum is not None and col.null_count < len(col):
                assert pc.max(col).as_py() <= f.maximum, f.name
            if f.kind == "id":
                lengths = pc.utf8_length(col.drop_null())
                assert pc.min(lengths).as_py() == pc.max(lengths).as_py() == f.max_length, f.name
    # nulls only where the model allows them, and present somewhere (realistic)
    prs = _rows("ER_PRS_F", 3000)
    assert sum(prs.column(c).null_count for c in prs.column_names) > 0


def test_foreign_keys_hold_across_tables_seeded_separately() -> None:
    ben = _rows("IR_BEN_R", 500)
    prs = _rows("ER_PRS_F", 3000)
    stays = _rows("T_MCOaaB", 800)
    stay_c = _rows("T_MCOaaC", 600)
    beneficiaries = set(zip(ben["BEN_NIR_PSA"].to_pylist(), ben["BEN_RNG_GEM"].to_pylist(), strict=True))
    claims = set(zip(prs["BEN_NIR_PSA"].to_pylist(), prs["BEN_RNG_GEM"].to_pylist(), strict=True))
    assert claims <= beneficiaries
    assert len(claims) > 100  # many beneficiaries are referenced, not one
    assert set(stay_c["NIR_ANO_17"].to_pylist()) <= {p for p, _ in beneficiaries}
    b_keys = set(zip(stays["ETA_NUM"].to_pylist(), stays["RSA_NUM"].to_pylist(), strict=True))
    assert set(zip(stay_c["ETA_NUM"].to_pylist(), stay_c["RSA_NUM"].to_pylist(), strict=True)) <= b_keys
    # a beneficiary's attributes repeated in the claims agree with the referential
    sex = dict(zip(ben["BEN_NIR_PSA"].to_pylist(), ben["BEN_SEX_COD"].to_pylist(), strict=True))
    assert all(
        sex[p] == s
        for p, s in zip(prs["BEN_NIR_PSA"].to_pylist(), prs["BEN_SEX_COD"].to_pylist(), strict=True)
        if s is not None and sex[p] is not None
    )


def test_deterministic_and_independent_of_the_split() -> None:
    whole = _rows("T_MCOaaB", 1000)
    assert whole.equals(_rows("T_MCOaaB", 1000))
    part = generate_rows(SF.table("T_MCOaaB"), 400, 700, seed=3, universe=500, schemas=SF)
    assert part.equals(whole.slice(400, 300))
    assert not whole.equals(_rows("T_MCOaaB", 1000, seed=4))


def test_seed_writes_partitioned_parquet_with_row_groups(azure_container: AzureBlobStore) -> None:
    url = f"azure://{azure_container.container}/lake/v1"
    r = seed_table(url, SF.table("IR_BEN_R"), 2500, schemas=SF, seed=1, rows_per_file=1000, row_group_size=400)
    names = sorted(i.name for i in azure_container.list("lake/v1/IR_BEN_R/"))
    assert names == [f"lake/v1/IR_BEN_R/part-0000{i}.parquet" for i in range(3)] == r.files
    total = 0
    for name in names:
        info = azure_container.head(name)
        pf = pq.ParquetFile(io.BytesIO(azure_container.read_range(name, 0, info.size)))
        assert pf.schema_arrow == arrow_schema(SF.table("IR_BEN_R"))
        assert pf.num_row_groups >= 2 or pf.metadata.num_rows <= 400
        total += pf.metadata.num_rows
        assert info.content_md5 is not None  # the generator gives the store an MD5 to check
    assert total == 2500


def test_seed_cli_csv_and_a_table_it_has_never_seen(azure_container: AzureBlobStore, tmp_path) -> None:
    schema = tmp_path / "registry.json"
    schema.write_text(
        json.dumps(
            {
                "tables": {
                    "T_PHARMA_LOT": {
                        "primaryKey": ["LOT_ID"],
                        "fields": [
                            {"name": "LOT_ID", "type": "string", "length": "12", "constraints": {"minLength": 12}},
                            {"name": "CIP13", "type": "string", "length": "13", "constraints": {"minLength": 13}},
                            {
                                "name": "QTE",
                                "type": "integer",
                                "length": "5",
                                "constraints": {"minimum": 1, "maximum": 500},
                            },
                            {"name": "PRIX", "type": "number", "length": "7,2"},
                            {"name": "FORME", "type": "string", "constraints": {"enum": ["CPR", "GEL", "SOL"]}},
                            {"name": "DTE_PER", "type": "date"},
                            {"name": "RETIRE", "type": "boolean"},
                        ],
                    }
                }
            }
        )
    )
    url = f"azure://{azure_container.container}/exports"
    rc = cli_main(
        [
            "seed",
            "--schema",
            str(schema),
            "--table",
            "T_PHARMA_LOT",
            "--rows",
            "700",
            "--format",
            "csv",
            "--seed",
            "5",
            url,
        ]
    )
    assert rc == 0
    info = azure_container.head("exports/T_PHARMA_LOT/part-00000.csv")
    assert info is not None
    text = azure_container.read_range(info.name, 0, info.size)
    # the model's missingValues is [""]: an empty field is a null
    t = pacsv.read_csv(io.BytesIO(text), convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    assert t.num_rows == 700
    assert t.column_names == ["LOT_ID", "CIP13", "QTE", "PRIX", "FORME", "DTE_PER", "RETIRE"]
    assert len(set(t["LOT_ID"].to_pylist())) == 700
    assert set(t["FORME"].drop_null().to_pylist()) <= {"CPR", "GEL", "SOL"}
    assert pc.min(t["QTE"]).as_py() >= 1 and pc.max(t["QTE"]).as_py() <= 500


def test_seed_rejects_an_unknown_table() -> None:
    with pytest.raises(Exception, match="no table 'NOPE'"):
        SF.table("NOPE")
