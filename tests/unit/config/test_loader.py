"""Loading whole site files: effective settings, profile lookup, positions, error collection."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from drivers.modbus.plugin import endpoint_of, read_limits
from drivers.modbus.types import DataType, Table, WordOrder
from edge.config.loader import format_loc, load_profile, load_site, read_yaml
from edge.config.profiles import BUNDLED_PROFILES

ROOT = Path(__file__).resolve().parents[3]
GOOD = ROOT / "tests" / "fixtures" / "sites" / "good"
EXAMPLE = ROOT / "config" / "examples" / "minimal-site.yaml"

SITE_HEAD = """\
site:
  id: estate-t
gateway:
  id: gw-t
  data_dir: state
buses:
  - {id: rs485-1, type: modbus_rtu, port: /dev/ttyUSB0, timeout_ms: 700, retries: 3}
"""


def write(tmp_path: Path, text: str, name: str = "site.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_site(path, **kwargs)  # type: ignore[arg-type]
    return [str(p) for p in caught.value.problems]


def test_bundled_profile_folder_is_the_repository_one() -> None:
    assert BUNDLED_PROFILES == ROOT / "config" / "profiles"


def test_example_site_loads_with_effective_settings() -> None:
    site = load_site(EXAMPLE)
    assert site.id == "estate-a"
    by_id = {d.id: d for d in site.devices}
    assert list(by_id) == ["meter-b1-main", "meter-b1-lift", "tank-b1-level"]
    main, lift, tank = by_id.values()
    # device value, else profile default, else bus value
    assert main.poll_interval_s == 5.0 and lift.poll_interval_s == 10.0
    assert main.timeout_ms == 500 and tank.timeout_ms == 1000
    assert read_limits(main)["max_registers_per_read"] == 80
    assert read_limits(tank)["max_registers_per_read"] == 125
    assert endpoint_of(main) == "/dev/ttyUSB0" == endpoint_of(lift)
    assert endpoint_of(tank) == ("192.168.10.31", 502)
    assert set(site.profiles) == {"eastron-sdm630", "chint-dtsu666"}
    assert site.data_dir == (EXAMPLE.parent / "data").resolve()


def test_profile_points_are_merged_with_patches() -> None:
    site = load_site(EXAMPLE)
    lift = next(d for d in site.devices if d.id == "meter-b1-lift")
    points = {p.id: p for p in lift.points}
    assert "energy_export" not in points  # enabled: false
    assert points["energy_import"].address == 0x101E  # patched
    assert points["energy_import"].type is DataType.FLOAT32  # kept from the profile
    assert points["voltage_l1"].scale == pytest.approx(0.1)
    # profile order is kept
    assert [p.id for p in lift.points][:3] == ["voltage_l1_l2", "voltage_l2_l3", "voltage_l3_l1"]


def test_every_bundled_enum_has_chinese_labels_for_all_its_codes() -> None:
    # The duty staff's dashboard is Chinese: an enum without enum_zh would show English there.
    enums = 0
    for path in sorted(BUNDLED_PROFILES.glob("*.yaml")):
        for point in load_profile(path, expect_id=path.stem).points:
            if point.enum is None:
                assert point.enum_zh is None, (path.name, point.id)
                continue
            enums += 1
            assert point.enum_zh is not None, (path.name, point.id)
            assert set(point.enum_zh) == set(point.enum), (path.name, point.id)
            assert all(label.strip() for label in point.enum_zh.values()), (path.name, point.id)
    assert enums >= 17
    lift = load_profile(BUNDLED_PROFILES / "elevator-monitor.yaml")
    labels = {p.id: p.enum_zh for p in lift.points}
    assert labels["direction"] == {0: "停止", 1: "上行", 2: "下行"}
    assert labels["fault_code"] is not None and labels["fault_code"][1] == "安全回路断路"


def test_a_patch_may_relabel_an_enum_in_chinese(tmp_path: Path) -> None:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(
        """site: {id: s}
gateway: {id: g}
buses: [{id: tcp, type: modbus_tcp, host: 192.0.2.1}]
devices:
  - id: lift-1
    bus: tcp
    profile: elevator-monitor
    points:
      - {id: door_state, enum_zh: {0: 已关闭}}
""",
        encoding="utf-8",
    )
    lift = load_site(site_file).devices[0]
    door = next(p for p in lift.points if p.id == "door_state")
    assert door.enum_zh == {0: "已关闭"}  # the patch replaces the profile's whole mapping
    assert door.enum == {0: "closed", 1: "open", 2: "closing", 3: "opening"}


def test_eastron_map_matches_the_manual() -> None:
    profile = load_profile(BUNDLED_PROFILES / "eastron-sdm630.yaml")
    points = {p.id: p for p in profile.points}
    expected = {
        "voltage_l1": 0,
        "current_l1": 6,
        "power_total": 52,
        "power_factor": 62,
        "frequency": 70,
        "energy_import": 72,
        "energy_export": 74,
        "energy_total": 342,
    }
    for point_id, address in expected.items():
        assert points[point_id].address == address
        assert points[point_id].table is Table.INPUT
        assert points[point_id].type is DataType.FLOAT32
        assert points[point_id].order is WordOrder.ABCD
    assert "Eastron" in profile.source


def test_chint_map_matches_the_manual() -> None:
    profile = load_profile(BUNDLED_PROFILES / "chint-dtsu666.yaml")
    points = {p.id: p for p in profile.points}
    assert points["voltage_l1_l2"].address == 0x2000 and points["voltage_l1_l2"].scale == pytest.approx(0.1)
    assert points["current_l1"].address == 0x200C and points["current_l1"].scale == pytest.approx(0.001)
    assert points["power_total"].address == 0x2012
    assert points["frequency"].address == 0x2044 and points["frequency"].scale == pytest.approx(0.01)
    assert points["energy_import"].address == 0x401E and points["energy_export"].address == 0x4028
    assert all(p.table is Table.HOLDING and p.type is DataType.FLOAT32 for p in profile.points)


def test_site_local_profile_overrides_bundled_one() -> None:
    site = load_site(GOOD / "local-profile.yaml")
    (meter,) = site.devices
    assert [p.id for p in meter.points] == ["voltage_l1", "energy_total"]
    assert meter.poll_interval_s == 30
    assert meter.points[0].scale == pytest.approx(0.1)


def test_profile_dirs_argument_takes_precedence(tmp_path: Path) -> None:
    extra = tmp_path / "mine"
    write(
        extra,
        "id: eastron-sdm630\nname: mine\nfamily: meter\nsource: typical\n"
        "points:\n  - {id: only, table: input, address: 0, type: float32}\n",
        "eastron-sdm630.yaml",
    )
    problems = problems_of(GOOD / "local-profile.yaml", profile_dirs=[extra])
    # voltage_l1 is not in the overriding profile, so the patch must be a complete point
    assert len(problems) == 1
    assert "devices[0].points[0].address: missing required key 'address'" in problems[0]
    assert ":14:9:" in problems[0]


def test_good_fixtures_load() -> None:
    site = load_site(GOOD / "pump-room.yaml")
    pump = next(d for d in site.devices if d.id == "pump-ctl")
    assert pump.timeout_ms == 800 and pump.retries == 2
    meter = next(d for d in site.devices if d.id == "meter-1")
    assert meter.timeout_ms == 300 and meter.retries == 1
    assert not next(d for d in site.devices if d.id == "meter-2").config.enabled


def test_relative_paths_are_taken_from_the_site_folder(tmp_path: Path) -> None:
    path = write(tmp_path / "deep", SITE_HEAD + "outbox: {path: buf/outbox.db}\n")
    site = load_site(path)
    assert site.data_dir == (tmp_path / "deep" / "state").resolve()
    assert site.outbox_path == (tmp_path / "deep" / "buf" / "outbox.db").resolve()


def test_missing_file_raises_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        load_site(tmp_path / "nope.yaml")


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    text = SITE_HEAD + (
        "devices:\n"
        "  - {id: a, bus: rs485-1, unit: 1, profile: eastron-sdm630}\n"  # line 9
        "  - {id: a, bus: rs485-1, unit: 1, profile: eastron-sdm630}\n"  # line 10
        "  - {id: b, bus: nowhere, profile: eastron-sdm630, colour: red}\n"  # line 11
        "  - {id: c, bus: rs485-1, unit: 7, profile: nothing-like-it}\n"  # line 12
    )
    problems = problems_of(write(tmp_path, text))
    assert problems == [
        f"{tmp_path}/site.yaml:10:10: devices[1].id: duplicate device id 'a'",
        f"{tmp_path}/site.yaml:10:33: devices[1].unit: unit 1 on /dev/ttyUSB0 is already device 'a'",
        f"{tmp_path}/site.yaml:11:18: devices[2].bus: unknown bus 'nowhere' (buses: rs485-1)",
        f"{tmp_path}/site.yaml:11:52: devices[2].colour: unknown key 'colour'",
        problems[4],
    ]
    assert problems[4].startswith(f"{tmp_path}/site.yaml:12:45: devices[3].profile: unknown profile")


def test_disabled_devices_may_share_an_address(tmp_path: Path) -> None:
    text = SITE_HEAD + (
        "devices:\n"
        "  - {id: old, bus: rs485-1, unit: 1, profile: eastron-sdm630, enabled: false}\n"
        "  - {id: new, bus: rs485-1, unit: 1, profile: eastron-sdm630}\n"
    )
    assert len(load_site(write(tmp_path, text)).devices) == 2


def test_hex_addresses_and_yaml_12_booleans(tmp_path: Path) -> None:
    text = SITE_HEAD + (
        "devices:\n"
        "  - id: d\n    bus: rs485-1\n    points:\n"
        "      - {id: p, address: 0x10, name: yes}\n"  # 'yes' is a string in YAML 1.2
    )
    (device,) = load_site(write(tmp_path, text)).devices
    assert device.points[0].address == 16 and device.points[0].name == "yes"


def test_broken_profile_is_reported_once_in_its_own_file(tmp_path: Path) -> None:
    write(
        tmp_path / "profiles",
        "id: acme\nname: x\nfamily: pump\nsource: typical\npoints:\n"
        "  - {id: a, address: 0, type: float32}\n"
        "  - {id: b, address: 1}\n",
        "acme.yaml",
    )
    text = (
        "profile_dirs: [profiles]\n"
        + SITE_HEAD
        + (
            "devices:\n"
            "  - {id: p1, bus: rs485-1, unit: 1, profile: acme}\n"
            "  - {id: p2, bus: rs485-1, unit: 2, profile: acme}\n"
        )
    )
    problems = problems_of(write(tmp_path, text))
    assert problems == [
        f"{tmp_path}/profiles/acme.yaml:7:22: points[1].address: point 'b' (holding 1) overlaps point 'a'"
    ]


def test_profile_id_must_match_its_file_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "id: other\nname: x\nfamily: pump\nsource: typical\npoints:\n  - {id: a, address: 0}\n",
        "acme.yaml",
    )
    with pytest.raises(ConfigError) as caught:
        load_profile(path, expect_id="acme")
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:1:5: id: profile id 'other' differs from its file name 'acme'"
    ]


def test_syntax_error_reports_the_parser_mark(tmp_path: Path) -> None:
    path = write(tmp_path, "site:\n  id: a\n  name: [unclosed\ngateway:\n  id: g\n")
    problems = problems_of(path)
    assert len(problems) == 1 and "(syntax): not valid YAML" in problems[0]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("-_", "'-_' looks like a number but is not one"),
        ("0x_", "'0x_' looks like a number but is not one"),
        ("._", "'._' looks like a number but is not one"),
        ("2024-02-30", "'2024-02-30' is not a valid date (day is out of range for month)"),
    ],
)
def test_a_scalar_the_parser_cannot_build_is_located(tmp_path: Path, value: str, says: str) -> None:
    # ruamel's resolver takes these for numbers or dates and then raises a bare ValueError or
    # IndexError building them (found by tests/fuzz); the installer gets the line and a fix.
    path = write(tmp_path, f"site:\n  id: a\n  name: {value}\n")
    assert problems_of(path) == [
        f"{path}:3:9: (syntax): not valid YAML: {says}; put it in quotes if it is text"
    ]


def test_not_utf8_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_bytes("site:\n  id: a\n  name: 阳光\n".encode("gb18030"))
    assert problems_of(path) == [f"{path}:3:1: (file): not UTF-8 text; save the file as UTF-8"]


def test_positions_for_missing_keys_point_at_the_mapping(tmp_path: Path) -> None:
    doc = read_yaml(write(tmp_path, "a:\n  b:\n    - {x: 1}\n    - y: 2\n      z: 3\n"))
    assert doc.position(("a", "b", 1, "missing")) == (4, 7)
    assert doc.position(("a", "b", 1, "z")) == (5, 10)
    assert doc.position(("a", "b", 1, "z"), at_key=True) == (5, 7)
    assert doc.position(("a", "b", 0, "x")) == (3, 11)
    assert doc.position(("a", "nope", 3)) == (2, 3)
    assert doc.position(()) == (1, 1)


def test_format_loc() -> None:
    assert format_loc(("devices", 3, "points", 0, "address")) == "devices[3].points[0].address"
    assert format_loc(()) == "(top level)"


def _every_yaml_file() -> list[Path]:
    found = [*(ROOT / "tests" / "fixtures" / "sites").rglob("*.yaml"), EXAMPLE]
    return [*found, *BUNDLED_PROFILES.glob("*.yaml")]


def test_fast_reader_and_round_trip_reader_agree() -> None:
    # Clean files are read by the fast safe parser and positions come from the round-trip tree:
    # both must see the same data, or a position could name the wrong node.
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from core.yaml_doc import plain as _plain

    compared = 0
    for path in _every_yaml_file():
        text = path.read_text(encoding="utf-8")
        try:
            fast = _plain(YAML(typ="safe").load(text))
        except YAMLError:
            continue  # a syntax-error fixture; read_yaml falls back to round-trip for those
        assert fast == _plain(YAML(typ="rt", pure=True).load(text)), path
        compared += 1
    assert compared >= 40
