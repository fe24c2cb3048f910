# Sourced by scripts/demo and scripts/test (not run on its own).
# ensure_venv [EXTRA]: make .venv (Python 3.11+, from $PYTHON or python3) and install pausenet
# into it, with the optional dependencies EXTRA (e.g. "dev") when given. Installs again only when
# pausenet is not importable or pyproject.toml is newer than the stamp of the last install.

_venv_die() {
  echo "error: $*" >&2
  exit 1
}

# _venv_too_old PY: true when PY is not a working Python 3.11+
_venv_too_old() {
  ! "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

ensure_venv() {
  local extra=${1:-} stamp=.venv/.installed-stamp spec=.
  if [ -n "$extra" ]; then
    stamp=$stamp-$extra
    spec=".[$extra]"
  fi
  if [ ! -x .venv/bin/python ]; then
    local py=${PYTHON:-python3}
    command -v "$py" >/dev/null 2>&1 ||
      _venv_die "$py not found; install Python 3.11 or newer (or set PYTHON=/path/to/python3)"
    if _venv_too_old "$py"; then
      _venv_die "$py is $("$py" -V 2>&1 || echo 'not a working Python'); pausenet needs Python" \
        "3.11 or newer: install one and run again with PYTHON=/path/to/python3.11 (or newer)"
    fi
    echo "Creating a virtual environment in .venv with $("$py" -V 2>&1)..." >&2
    "$py" -m venv .venv || _venv_die "could not create .venv (on Debian/Ubuntu: apt install python3-venv)"
  fi
  if _venv_too_old .venv/bin/python; then
    _venv_die ".venv holds $(.venv/bin/python -V 2>&1 || echo 'a broken Python'); pausenet needs" \
      "3.11 or newer: remove .venv and run again (PYTHON=/path/to/python3.11 picks the Python)"
  fi

  local stamps=("$stamp") s fresh=
  if [ -z "$extra" ]; then
    stamps+=(.venv/.installed-stamp-dev) # a dev install also satisfies a plain one
  fi
  for s in "${stamps[@]}"; do
    if [ -f "$s" ] && [ ! pyproject.toml -nt "$s" ]; then
      fresh=1
    fi
  done
  if [ -z "$fresh" ] || ! .venv/bin/python -c 'import pausenet' 2>/dev/null; then
    echo "Installing pausenet${extra:+ with its [$extra] extras} into .venv..." >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check -e "$spec"
    touch "$stamp"
  fi
}
