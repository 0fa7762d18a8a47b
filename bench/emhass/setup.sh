#!/usr/bin/env bash
# The emhass peer's own virtual environment (issue 14): bench/emhass/.venv, never the project's .venv.
# emhass needs Python >= 3.10, < 3.13 and pins its own numpy (< 2.3) and cvxpy (< 1.8), so it cannot
# share the project's environment. Usage: bash bench/emhass/setup.sh [PYTHON]   (default: python3)
set -euo pipefail
EMHASS_VERSION="0.18.7"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${1:-${EMHASS_PYTHON:-python3}}"
"$py" - <<'PYEOF'
import sys
if not ((3, 10) <= sys.version_info[:2] < (3, 13)):
    sys.exit(f"emhass needs Python 3.10 to 3.12, this is {sys.version.split()[0]}: pass another python")
PYEOF
if [ ! -x "$here/.venv/bin/python" ]; then
    "$py" -m venv "$here/.venv"
fi
"$here/.venv/bin/python" -m pip install -q --upgrade pip
"$here/.venv/bin/python" -m pip install -q "emhass==$EMHASS_VERSION"
"$here/.venv/bin/python" -c "import emhass, importlib.metadata as m; print('emhass', m.version('emhass'), 'numpy', m.version('numpy'), 'cvxpy', m.version('cvxpy'))"
