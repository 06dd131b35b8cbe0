"""Rendering config/mosquitto/ for a given PKI and port: only paths, port and auth change."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_sync.broker_config import (
    DEFAULT_TEMPLATE_DIR,
    AuthMode,
    BrokerConfigError,
    render_config,
    write_broker_config,
)
from cloud_sync.certs import PkiLayout

TEMPLATE = (DEFAULT_TEMPLATE_DIR / "mosquitto.conf").read_text()


def directives(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out.append((key, value))
    return out


def render(auth: AuthMode = AuthMode.PASSWORD, template: str = TEMPLATE, root: bool = False) -> str:
    return render_config(
        template,
        layout=PkiLayout(Path("/pki")),
        acl_path=Path("/run/acl"),
        port=18883,
        bind_address="127.0.0.1",
        auth=auth,
        persistence_dir=Path("/run/data"),
        log_file=None,
        run_as_root=root,
    )


def test_production_template_is_tls_only_and_closed() -> None:
    d = dict(directives(TEMPLATE))
    keys = [k for k, _ in directives(TEMPLATE)]
    assert keys.count("listener") == 1
    assert d["listener"] == "8883"
    assert d["allow_anonymous"] == "false"
    assert d["per_listener_settings"] == "false"
    assert {"cafile", "certfile", "keyfile", "password_file", "acl_file"} <= set(d)
    assert d["persistence"] == "true"
    assert "port" not in d  # the legacy default listener (plaintext 1883) is never configured
    # Listener options come after the listener line, or Mosquitto opens a default listener.
    assert keys.index("require_certificate") > keys.index("listener")


def test_render_replaces_paths_port_and_nothing_else() -> None:
    text = render()
    d = dict(directives(text))
    assert d["listener"] == "18883 127.0.0.1"
    assert d["cafile"] == "/pki/ca.crt"
    assert d["certfile"] == "/pki/broker/broker.crt"
    assert d["keyfile"] == "/pki/broker/broker.key"
    assert d["password_file"] == "/pki/broker/passwd"
    assert d["acl_file"] == "/run/acl"
    assert d["persistence_location"] == "/run/data/"
    assert "user" not in d
    untouched = {"allow_anonymous", "max_queued_messages", "tls_version", "max_packet_size"}
    original = dict(directives(TEMPLATE))
    assert {k: d[k] for k in untouched} == {k: original[k] for k in untouched}


@pytest.mark.parametrize(
    ("auth", "require", "identity"),
    [
        (AuthMode.PASSWORD, "false", "false"),
        (AuthMode.CERTIFICATE, "true", "true"),
        (AuthMode.BOTH, "true", "false"),
    ],
)
def test_auth_modes(auth: AuthMode, require: str, identity: str) -> None:
    d = dict(directives(render(auth)))
    assert (d["require_certificate"], d["use_identity_as_username"]) == (require, identity)


def test_private_broker_run_as_root_keeps_root() -> None:
    assert directives(render(root=True))[0] == ("user", "root")


def test_listener_option_before_listener_is_refused() -> None:
    bad = "require_certificate true\n" + TEMPLATE
    with pytest.raises(BrokerConfigError, match="before the listener"):
        render(template=bad)


def test_missing_directive_is_refused() -> None:
    bad = "\n".join(line for line in TEMPLATE.splitlines() if not line.startswith("acl_file"))
    with pytest.raises(BrokerConfigError, match="acl_file"):
        render(template=bad)


def test_write_copies_the_acl(tmp_path: Path) -> None:
    files = write_broker_config(tmp_path / "mq", layout=PkiLayout(tmp_path / "pki"), port=18883)
    assert files.acl.read_text() == (DEFAULT_TEMPLATE_DIR / "acl").read_text()
    assert "pattern write gh/v1/%u/up/#" in files.acl.read_text()
    assert f"log_dest file {files.log_file}" in files.config.read_text()
