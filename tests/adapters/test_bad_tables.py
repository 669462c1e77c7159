"""Bad label tables, written as real files into a real K-ium root, and properties of the label
mapping and the CSV reader that must hold for any input hypothesis can think of."""

import string

import pytest
from aneurysm_adapters.kium import header_problems, read_label_table
from aneurysm_adapters.label_maps import RSNA2025, apply_rules
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aneurysm.cli.main import cli
from aneurysm.errors import DataError
from aneurysm.registry import get_adapter
from aneurysm.schema import LOCATION_NAMES


def _edit(text: str, case: str) -> str:
    lines = text.splitlines()
    first = lines[1].split(",")[0]
    return {
        "no header": "\n".join(lines[1:]) + "\n",
        "BOM": "\ufeff" + text,
        "CRLF": text.replace("\n", "\r\n"),
        "duplicate columns": lines[0] + ",Aneurysm\n" + "".join(f"{s},0\n" for s in lines[1:]),
        "NaN label": text.replace(f"\n{first},0,", f"\n{first},nan,", 1),
        "Index as text": text.replace(f"\n{first},", "\nabc,", 1),
        "Index with leading zeros": text.replace(f"\n{first},", f"\n0{first},", 1),
    }[case]


# case -> (adapter loads all patients?, the doctor's finding or "" for a clean bill)
CASES = {
    "no header": (False, "no header row: the first line is data"),
    "BOM": (True, ""),
    "CRLF": (True, ""),
    "duplicate columns": (False, "duplicate columns ['Aneurysm']"),
    "NaN label": (False, "labels other than 0/1: Aneurysm='nan'"),
    "Index as text": (False, "csv_bad_index"),
    "Index with leading zeros": (True, ""),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_bad_table_is_one_clear_line_or_read_right(kium_root, case):
    csv_path = kium_root / "train_set" / "train.csv"
    csv_path.write_bytes(_edit(csv_path.read_text(), case).encode("utf-8"))
    loads, finding = CASES[case]
    adapter = get_adapter("kium")
    if loads:
        records = adapter.load(kium_root, "train")
        assert len(records) == 10 and all(r.study_id.isdigit() for r in records)
    else:
        with pytest.raises(DataError) as err:
            adapter.load(kium_root, "train")
        assert "train.csv" in str(err.value) and "\n" not in str(err.value)
    result = CliRunner().invoke(cli, ["check", "--root", str(kium_root), "--workers", "1",
                                      "--show", "50"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    if finding:
        assert result.exit_code == 1 and finding in result.output, result.output
    else:
        assert result.exit_code == 0 and "0 errors, 0 warnings" in result.output, result.output


_RSNA_LABELS = [r.source_label for r in RSNA2025 if r.kind != "unknown"]


@given(st.dictionaries(st.sampled_from(_RSNA_LABELS), st.integers(0, 1)))
def test_label_mapping_never_claims_more_than_the_source_says(values):
    mapped = apply_rules(RSNA2025, values)
    for name, value, known in zip(LOCATION_NAMES, mapped.locations, mapped.location_known):
        assert value in (0, 1)
        assert known or value == 0  # a positive is always a known positive
        if name in ("L_AntChor", "R_AntChor"):
            assert not known  # RSNA has no anterior choroidal label
    if not any(values.values()):
        assert not any(mapped.locations) and not mapped.groups
    for group in mapped.groups:  # a positive group's members are never known negatives
        for member in group.members:
            i = LOCATION_NAMES.index(member)
            assert mapped.locations[i] == 1 or not mapped.location_known[i]


_cell = st.text(string.ascii_letters + string.digits + " ._-\"'", max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(_cell, min_size=1, max_size=5), min_size=0, max_size=6),
       st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_the_csv_reader_reads_or_refuses_in_one_line(tmp_path, rows, newline, bom):
    path = tmp_path / "train.csv"
    text = newline.join(",".join(r) for r in rows)
    path.write_bytes((("\ufeff" if bom else "") + text).encode("utf-8"))
    try:
        table = read_label_table(path)
    except DataError as exc:
        assert "train.csv" in str(exc) and "\n" not in str(exc)
        return
    problems = header_problems(table.attrs["header"])
    assert all(isinstance(p, str) and "\n" not in p for p in problems)
    assert problems  # random rows are never the official header
