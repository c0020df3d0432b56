"""Every published record under results/ matches its JSON Schema and comes
back unchanged through its typed class; a record that breaks the schema is
caught."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from pvmatrix.records import Evidence, Status, Verdict
from pvmatrix.results.records import CellRecord, RunRecord, validate

RESULTS = Path(__file__).resolve().parents[2] / "results"
CELLS = sorted(RESULTS.glob("*/cells/*.json"))
RUNS = sorted(RESULTS.glob("*/run.json"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _id(path: Path) -> str:
    return str(path.relative_to(RESULTS))


def test_the_published_run_has_records():
    assert CELLS and RUNS


@pytest.mark.parametrize("path", CELLS, ids=_id)
def test_cell_record_is_valid_and_round_trips(path):
    data = _load(path)
    validate(data)
    assert CellRecord.from_dict(data).to_dict() == data


@pytest.mark.parametrize("path", RUNS, ids=_id)
def test_run_record_is_valid_and_round_trips(path):
    data = _load(path)
    validate(data)
    assert RunRecord.from_dict(data).to_dict() == data


def test_a_bad_status_fails_validation():
    data = copy.deepcopy(_load(CELLS[0]))
    data["verdict"]["status"] = "ok"              # the boot judge's word, not a status
    with pytest.raises(jsonschema.ValidationError):
        validate(data)
    with pytest.raises(ValueError):
        CellRecord.from_dict(data)


def test_a_missing_key_or_an_unknown_one_fails_validation():
    data = copy.deepcopy(_load(RUNS[0]))
    del data["state"]
    with pytest.raises(jsonschema.ValidationError):
        validate(data)
    cell = {**_load(CELLS[0]), "surprise": 1}
    with pytest.raises(jsonschema.ValidationError):
        validate(cell)


def test_status_is_the_json_string():
    v = Verdict(Status.FAIL, "Kernel panic", "panic", [Evidence("Kernel panic", "panic", 3, "s.log")])
    assert json.loads(json.dumps(v.to_dict()))["status"] == "fail"
    assert v.to_dict() == Verdict.from_dict(v.to_dict()).to_dict()
    assert "seconds" not in v.to_dict()           # a record keeps it in durations


def test_records_written_now_are_valid(tmp_path):
    """The writer side: a run recorded through the store (matrix_helpers.fake_run)."""
    from matrix_helpers import FAKE_BOOTS, fake_run, small_spec
    run = fake_run(tmp_path / "results", small_spec(tmp_path))
    validate(run.meta)
    for rec in run.records():
        validate(rec)
        assert CellRecord.from_dict(rec).to_dict() == rec
    boots = {r["cell"]["id"]: CellRecord.from_dict(r).boot for r in run.records() if r["boot"]}
    assert boots == FAKE_BOOTS                    # typed in, the same typed facts back


def test_run_flags_are_kept_and_a_run_from_before_them_reads_as_it_was(tmp_path):
    from pvmatrix.results.records import RunFlags
    # a run from before flags: a published run record without them (the
    # published runs from then are pruned to history/)
    old = {k: v for k, v in _load(RUNS[0]).items() if k not in ("flags",)}
    validate(old)
    assert RunRecord.from_dict(old).flags is None
    assert RunRecord.from_dict(old).to_dict() == old
    new = {**old, "flags": {"recheck": True, "retries": 0, "bisect": False, "store": "s3://b/p"}}
    validate(new)
    assert RunRecord.from_dict(new).flags == RunFlags(True, 0, False, "s3://b/p")
    assert RunRecord.from_dict(new).to_dict() == new
    with pytest.raises(jsonschema.ValidationError):
        validate({**old, "flags": {**new["flags"], "jobs": 4}})
    assert RunRecord.from_dict(new).flags.confirm is False     # flags kept before --confirm
    confirmed = {**old, "flags": {**new["flags"], "confirm": True}}
    validate(confirmed)
    assert RunRecord.from_dict(confirmed).flags == RunFlags(True, 0, False, "s3://b/p", True)
    assert RunRecord.from_dict(confirmed).to_dict() == confirmed
    with pytest.raises(jsonschema.ValidationError):
        validate({**old, "flags": {**new["flags"], "confirm": "yes"}})
