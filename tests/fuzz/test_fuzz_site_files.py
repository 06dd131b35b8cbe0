"""Site files and CSV sheets as an installer's editor, a bad copy or Excel could leave them.

``load_site`` answers any text with a Site or a ConfigError (each problem located); the CSV
import path of ``gatehouse import`` (decode, rows, merge, validate, locate) answers with a CsvError
or ConfigError. Nothing else escapes: no YAML, pydantic, recursion or Unicode exception.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from core.errors import ConfigError
from edge.config.loader import load_site
from edge.site_io import CsvError, decode_csv, export_site_file, import_rows, locate_problems, merge_into
from tests.fuzz.support import fuzz_settings, mutated, mutated_text

REPO = Path(__file__).resolve().parents[2]
MINIMAL = (REPO / "config" / "examples" / "minimal-site.yaml").read_text(encoding="utf-8")
EXTRA = """
outbox: {quota_bytes: 5000000, commit_interval_ms: 50}
uplink:
  broker_host: central.example
  broker_port: 8883
  ca_file: ca.crt
  username: gw-a1
  password_file: password
  signing_key: signing.key
  central_key: central.pub
rules:
  linkage:
    - id: low-water
      trigger: point("tank-b1-level.level") < 0.5 for 10s
      mode: automatic
      steps:
        - {write: tank-b1-level.level, value: 1, timeout_s: 3}
"""
SEEDS = [MINIMAL, MINIMAL + EXTRA, "site: {id: a}\ngateway: {id: g}\nbuses: []\ndevices: []\n"]
ALPHABET = "abc-_: \n{}[],'\"!&*|>#%@`0123456789.\t\\"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("site"))


def _site(folder: Path, text: str) -> Path:
    path = folder / "site.yaml"
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    return path


@fuzz_settings()
@given(
    st.one_of(
        mutated_text(SEEDS, ALPHABET, max_random=300),
        st.integers(1, 3000).map(lambda n: "a: " + "[" * n + "]" * n),
        st.integers(1, 3000).map(lambda n: "".join(f"{' ' * i}k{i}:\n" for i in range(n))),
        st.integers(1, 200).map(
            lambda n: "a: &x [1]\n" + "".join(f"b{i}: &x{i} [*x, *x]\n" for i in range(n))
        ),
    )
)
def test_site_yaml_loads_or_raises_config_error(folder: Path, text: str) -> None:
    try:
        load_site(_site(folder, text))
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert str(problem)


def _csv_seeds() -> list[bytes]:
    folder = REPO / "config" / "examples"
    return [
        export_site_file(folder / "minimal-site.yaml"),
        export_site_file(folder / "demo-estate.yaml")[:6000],
    ]


CSV_SEEDS = _csv_seeds()


def _import(folder: Path, raw: bytes) -> None:
    imported = import_rows(decode_csv(raw))
    doc = YAML().load(io.StringIO(SEEDS[2]))
    merge_into(doc, imported)
    out = io.StringIO()
    YAML().dump(doc, out)
    try:
        load_site(_site(folder, out.getvalue()))
    except ConfigError as exc:
        locate_problems(exc, imported)


@fuzz_settings()
@given(mutated(CSV_SEEDS, max_random=400))
def test_csv_import_raises_only_csv_or_config_errors(folder: Path, raw: bytes) -> None:
    try:
        _import(folder, raw)
    except (CsvError, ConfigError):
        pass


@pytest.mark.parametrize(
    "text",
    ["a: " + "[" * 400 + "]" * 400, "".join(f"{' ' * i}k{i}:\n" for i in range(300))],
    ids=["flow", "block"],
)
def test_deeply_nested_yaml_is_a_config_error_not_a_recursion_error(folder: Path, text: str) -> None:
    # Found by the fuzzer above: both raised RecursionError out of the loader.
    with pytest.raises(ConfigError) as caught:
        load_site(_site(folder, text))
    assert "nested more than" in str(caught.value)


def test_csv_with_a_bom_and_bad_utf8_is_a_csv_error() -> None:
    # Found by the fuzzer above: a UnicodeDecodeError escaped decode_csv.
    with pytest.raises(CsvError) as caught:
        decode_csv(b"\xef\xbb\xbfkind,id\n\x80")
    assert caught.value.problems[0].row == 2


def test_csv_with_a_lone_carriage_return_is_a_csv_error() -> None:
    # Found by the fuzzer above: csv.Error escaped import_rows.
    with pytest.raises(CsvError) as caught:
        import_rows('kind,id\nbus,a\rb"\n')
    assert "not a valid CSV sheet" in caught.value.problems[0].message
