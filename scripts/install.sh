#!/usr/bin/env bash
# Install, upgrade, roll back or remove Gatehouse on a Debian 12 / Raspberry Pi OS gateway.
#
#   sudo scripts/install.sh install      # from this checkout (or --from DIR); idempotent
#   sudo scripts/install.sh upgrade      # new release beside the old one; databases backed up first
#   sudo scripts/install.sh rollback     # back to the previous release (--with-data: its databases too)
#   sudo scripts/install.sh uninstall    # code and units; --purge also /etc/gatehouse and the data
#   scripts/install.sh status
#
# Layout (under $GATEHOUSE_ROOT, default /):
#   /opt/gatehouse/releases/<version>/{src,venv}   one folder per release, each with its own venv
#   /opt/gatehouse/current  -> releases/<version>  what the units run
#   /opt/gatehouse/previous -> releases/<version>  what `rollback` returns to
#   /etc/gatehouse/                                site.yaml, pki/, backup.passphrase
#   /var/lib/gatehouse/                            the databases (gateway.data_dir)
#   /var/backups/gatehouse/                        backups; pre-upgrade/<old>-<time>/ copies
#   /etc/systemd/system/gatehouse*.{service,timer}
#
# Environment:
#   GATEHOUSE_ROOT      install under this folder instead of / (tests, image builds): no user
#                       is created and systemctl is not called, and the output says so
#   GATEHOUSE_VERSION   the release name (default: the package version + git commit, or a
#                       hash of the sources)
#   GATEHOUSE_PYTHON    the interpreter for the venv (default python3)
#   GATEHOUSE_PIP_ARGS  extra pip arguments, e.g. "--no-index --find-links /media/wheels" offline
#   GATEHOUSE_EXTRA_SITE  a site-packages folder the venv may also import from (reuse an
#                       existing package set: tests, offline installs), with --no-deps
set -euo pipefail

ROOT="${GATEHOUSE_ROOT:-}"
ROOT="${ROOT%/}"
PY="${GATEHOUSE_PYTHON:-python3}"
OPT="$ROOT/opt/gatehouse"
ETC="$ROOT/etc/gatehouse"
DATA="$ROOT/var/lib/gatehouse"
BACKUPS="$ROOT/var/backups/gatehouse"
UNITS="$ROOT/etc/systemd/system"
USER_NAME=gatehouse
UNIT_FILES=(gatehouse.service gatehouse-backup.service gatehouse-backup.timer)

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
real() { [[ -z "$ROOT" ]]; }

need_root() {
  if real && [[ $(id -u) -ne 0 ]]; then die "run as root (sudo $0 $*), or set GATEHOUSE_ROOT to install under a folder"; fi
}

systemctl_() {
  if real && [[ -d /run/systemd/system ]]; then
    systemctl "$@"
  elif real; then
    say "systemd is not running on this machine: skipped 'systemctl $*'"
  else
    say "GATEHOUSE_ROOT=$ROOT: skipped 'systemctl $*'"
  fi
}

source_dir() {
  local from="${FROM:-$(cd "$(dirname "$0")/.." && pwd)}"
  [[ -f "$from/pyproject.toml" && -d "$from/edge" ]] || die "$from is not a Gatehouse source tree"
  printf '%s' "$from"
}

release_name() {
  local src="$1"
  if [[ -n "${GATEHOUSE_VERSION:-}" ]]; then printf '%s' "$GATEHOUSE_VERSION"; return; fi
  local version
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$src/pyproject.toml" | head -1)
  local rev=""
  if git -C "$src" rev-parse --short HEAD >/dev/null 2>&1; then
    rev="g$(git -C "$src" rev-parse --short HEAD)"
    git -C "$src" diff --quiet HEAD -- core edge drivers cloud_sync rules simulators config 2>/dev/null || rev="$rev.dirty"
  else
    rev="h$(tar -C "$src" -cf - core edge drivers cloud_sync rules simulators config pyproject.toml 2>/dev/null | sha256sum | cut -c1-10)"
  fi
  printf '%s+%s' "$version" "$rev"
}

ensure_user() {
  if ! real; then say "GATEHOUSE_ROOT=$ROOT: skipped creating the '$USER_NAME' user"; return; fi
  if id "$USER_NAME" >/dev/null 2>&1; then return; fi
  useradd --system --home-dir /var/lib/gatehouse --shell /usr/sbin/nologin "$USER_NAME"
  getent group dialout >/dev/null && usermod -aG dialout "$USER_NAME"
  say "created the system user '$USER_NAME' (in group dialout for serial adapters)"
}

own() {  # own MODE OWNER:GROUP DIR — created if missing; ownership only on a real install
  local mode="$1" owner="$2" dir="$3"
  install -d -m "$mode" "$dir"
  if real; then chown "$owner" "$dir"; fi
}

ensure_dirs() {
  own 0755 root:root "$OPT"
  own 0755 root:root "$OPT/releases"
  own 0750 "root:$USER_NAME" "$ETC"
  own 0750 "$USER_NAME:$USER_NAME" "$DATA"
  own 0700 "$USER_NAME:$USER_NAME" "$BACKUPS"
}

build_release() {  # build_release SRC NAME — idempotent: a complete release is left alone
  local src="$1" name="$2" rel="$OPT/releases/$2"
  if [[ -f "$rel/.complete" ]]; then say "release $name is already built"; return; fi
  # Built in place; .complete is written last, so a half-built release is rebuilt next time.
  rm -rf "$rel"
  local tmp="$rel"
  install -d "$tmp/src"
  say "copying the sources of $name"
  tar -C "$src" -cf - --exclude=__pycache__ --exclude='*.egg-info' \
    pyproject.toml README.md core edge drivers cloud_sync rules simulators config docs systemd scripts \
    | tar -C "$tmp/src" -xf -
  say "creating the venv of $name"
  "$PY" -m venv "$tmp/venv"
  if [[ -n "${GATEHOUSE_EXTRA_SITE:-}" ]]; then
    # Reuse an existing package set: the venv also imports from it, and the release's sources
    # are linked the way an editable install links them (no build, nothing downloaded).
    local site
    site=$("$tmp/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    printf '%s\n' "$GATEHOUSE_EXTRA_SITE" >"$site/gatehouse-extra.pth"
    printf '%s\n' "$tmp/src" >"$site/_gatehouse-src.pth"  # first on sys.path
    printf '#!%s\nimport sys\nfrom edge.cli import main\nsys.exit(main())\n' "$tmp/venv/bin/python" \
      >"$tmp/venv/bin/gatehouse"
    chmod 0755 "$tmp/venv/bin/gatehouse"
  else
    # Editable into its own release folder: the bundled profiles are read from src/config/.
    # shellcheck disable=SC2086
    "$tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      ${GATEHOUSE_PIP_ARGS:-} -e "$tmp/src" || die "pip install failed; nothing was switched"
  fi
  "$rel/venv/bin/gatehouse" --help >/dev/null || die "the new release does not start: $rel"
  touch "$rel/.complete"
  say "built release $name"
}

link() {  # link NAME TARGET — atomic symlink replacement
  local name="$1" target="$2"
  ln -sfn "$target" "$OPT/.$name.new"
  mv -T "$OPT/.$name.new" "$OPT/$name"
}

install_units() {
  install -d -m 0755 "$UNITS"
  local changed=0 unit
  for unit in "${UNIT_FILES[@]}"; do
    if ! cmp -s "$OPT/current/src/systemd/$unit" "$UNITS/$unit"; then
      install -m 0644 "$OPT/current/src/systemd/$unit" "$UNITS/$unit"
      changed=1
    fi
  done
  if ((changed)); then
    say "installed the units in $UNITS"
    systemctl_ daemon-reload
  fi
  systemctl_ enable gatehouse.service gatehouse-backup.timer
}

backup_data() {  # copies of every database with SQLite's backup API, before a release changes them
  local from="$1" dest
  shopt -s nullglob
  local dbs=("$DATA"/*.db)
  shopt -u nullglob
  if ((${#dbs[@]} == 0)); then return; fi
  dest="$BACKUPS/pre-upgrade/$from-$(date -u +%Y%m%dT%H%M%SZ)"
  install -d -m 0700 "$dest"
  "$OPT/current/venv/bin/python" - "$dest" "${dbs[@]}" <<'EOF'
import shutil, sqlite3, sys
from pathlib import Path
dest = Path(sys.argv[1])
for name in sys.argv[2:]:
    src = sqlite3.connect(f"file:{name}?mode=ro", uri=True)
    dst = sqlite3.connect(dest / Path(name).name)
    src.backup(dst)
    dst.close()
    src.close()
    seq = Path(name + ".seq")
    if seq.exists():
        shutil.copyfile(seq, dest / seq.name)
EOF
  if real; then chown -R "$USER_NAME:$USER_NAME" "$dest"; fi
  printf '%s' "$dest" >"$OPT/.pre-upgrade"
  say "databases backed up to $dest"
}

current_name() { [[ -L "$OPT/current" ]] && basename "$(readlink "$OPT/current")" || true; }

restart_if_configured() {
  if [[ -f "$ETC/site.yaml" ]]; then
    systemctl_ restart gatehouse.service
  else
    say "no $ETC/site.yaml yet: put the site file there, then 'systemctl start gatehouse'"
  fi
}

cmd_install() {
  need_root install
  local src name now
  src=$(source_dir)
  name=$(release_name "$src")
  now=$(current_name)
  ensure_user
  ensure_dirs
  if [[ -n "$now" && "$now" != "$name" && "${1:-}" != "upgrade" ]]; then
    say "release $now is installed; use 'upgrade' to switch to $name"
    exit 1
  fi
  build_release "$src" "$name"
  if [[ "$now" == "$name" ]]; then
    say "release $name is current: nothing to switch"
  else
    link current "releases/$name"
    say "current -> releases/$name"
  fi
  install_units
  if [[ "$now" != "$name" ]]; then restart_if_configured; fi
  say "installed $name under ${ROOT:-/}"
}

cmd_upgrade() {
  need_root upgrade
  local src name now
  src=$(source_dir)
  name=$(release_name "$src")
  now=$(current_name)
  [[ -n "$now" ]] || die "nothing installed yet: use 'install'"
  if [[ "$now" == "$name" ]]; then say "release $name is already current"; install_units; return; fi
  build_release "$src" "$name"
  "$OPT/releases/$name/venv/bin/gatehouse" --help >/dev/null
  if [[ -f "$ETC/site.yaml" ]]; then
    "$OPT/releases/$name/venv/bin/gatehouse" check "$ETC/site.yaml" \
      || die "the new release finds problems in $ETC/site.yaml; still running $now"
  fi
  systemctl_ stop gatehouse.service
  backup_data "$now"
  link previous "releases/$now"
  link current "releases/$name"
  say "upgraded $now -> $name (previous -> $now)"
  install_units
  restart_if_configured
}

cmd_rollback() {
  need_root rollback
  [[ -L "$OPT/previous" ]] || die "no previous release to roll back to"
  local now prev
  now=$(current_name)
  prev=$(basename "$(readlink "$OPT/previous")")
  [[ -f "$OPT/releases/$prev/.complete" ]] || die "release $prev is incomplete"
  systemctl_ stop gatehouse.service
  if [[ "${1:-}" == "--with-data" ]]; then
    local copy
    copy=$(cat "$OPT/.pre-upgrade" 2>/dev/null || true)
    [[ -n "$copy" && -d "$copy" ]] || die "no pre-upgrade copy of the databases"
    rm -f "$DATA"/*.db-wal "$DATA"/*.db-shm
    cp -p "$copy"/*.db "$DATA"/
    # Keep the newer .seq marks: a sequence number is never reused (docs/operations.md).
    say "databases restored from $copy"
  fi
  link current "releases/$prev"
  link previous "releases/$now"
  say "rolled back $now -> $prev (previous -> $now)"
  install_units
  restart_if_configured
}

cmd_uninstall() {
  need_root uninstall
  systemctl_ disable --now gatehouse.service gatehouse-backup.timer
  local unit
  for unit in "${UNIT_FILES[@]}"; do rm -f "$UNITS/$unit"; done
  systemctl_ daemon-reload
  rm -rf "$OPT"
  if [[ "${1:-}" == "--purge" ]]; then
    rm -rf "$ETC" "$DATA" "$BACKUPS"
    if real && id "$USER_NAME" >/dev/null 2>&1; then userdel "$USER_NAME"; fi
    say "removed the code, units, configuration, data and backups"
  else
    say "removed the code and units; kept $ETC, $DATA and $BACKUPS (--purge removes them)"
  fi
}

cmd_status() {
  say "root:     ${ROOT:-/}"
  say "current:  $(current_name)"
  say "previous: $([[ -L "$OPT/previous" ]] && basename "$(readlink "$OPT/previous")")"
  say "releases: $(ls "$OPT/releases" 2>/dev/null | tr '\n' ' ')"
}

FROM=""
cmd="${1:-}"
shift || true
if [[ "${1:-}" == "--from" ]]; then FROM="$2"; shift 2; fi
case "$cmd" in
  install) cmd_install "$@" ;;
  upgrade) cmd_upgrade "$@" ;;
  rollback) cmd_rollback "$@" ;;
  uninstall) cmd_uninstall "$@" ;;
  status) cmd_status ;;
  *) die "usage: $0 install|upgrade|rollback [--with-data]|uninstall [--purge]|status [--from DIR]" ;;
esac
