# Sourced by the scripts: ensure_venv DIR REQUIREMENTS creates or refreshes a virtual environment.
# It reinstalls only when the requirements file changed (a hash stamp inside the venv).
ensure_venv() {
    local dir=$1 req=$2 stamp
    stamp=$(sha256sum "$req" | cut -c1-16)
    if [ ! -x "$dir/bin/python" ] || [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
        echo ">> setting up $dir from $req" >&2
        python3.11 -m venv "$dir" 2>/dev/null || python3 -m venv "$dir"
        "$dir/bin/python" -m pip install -q --upgrade pip >&2
        "$dir/bin/python" -m pip install -q -r "$req" >&2
        echo "$stamp" >"$dir/.stamp"
    fi
}
