#!/bin/sh
# Usage: find-python.sh 3.12 -- print the path of a CPython 3.12 that has pip, or nothing.
# Looks at $LAYER_PYTHON_3_12, python3.12 on PATH, pyenv's versions (newest first), then
# /usr/local/bin and /usr/bin; a pyenv shim that is not selected fails the check and is passed.
version="$1"
override=$(printenv "LAYER_PYTHON_$(echo "$version" | tr . _)")
pyenv_root=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
for candidate in $override "python$version" \
    $(ls -d "$pyenv_root"/versions/"$version".*/bin/python"$version" 2>/dev/null | sort -r -V) \
    "/usr/local/bin/python$version" "/usr/bin/python$version"; do
    if "$candidate" -c "import sys, pip; sys.exit(sys.version_info[:2] != tuple(map(int, '$version'.split('.'))))" \
        >/dev/null 2>&1; then
        "$candidate" -c 'import sys; print(sys.executable)'
        exit 0
    fi
done
