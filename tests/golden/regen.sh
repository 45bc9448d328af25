#!/usr/bin/env bash
# regen.sh PATH_TO_CONFD [CASE...]
#
# Rewrites the expected output of every golden case (or only the named ones)
# by running a real confd on it. For each case it builds a throw-away confdir:
#
#   conf.d/<case>.toml       [template] src = "template.tmpl", dest = "<tmp>/out",
#                            plus the case's `keys` (default ["/"]) and `prefix`
#   templates/template.tmpl  the case's template.tmpl
#   data.yaml                the case's data.yaml
#
# and runs, from inside that directory, with a clean environment:
#
#   env -i PATH=/usr/bin:/bin TZ=UTC <case env> CONFD -onetime -backend file \
#       -file data.yaml -confdir . -config-file confd.toml -log-level error
#
# (confd.toml does not exist, so no confd config file is read.) On success the
# rendered file becomes `expected`; on failure the message of confd's first
# ERROR log line (timestamp, host name, program name and pid stripped), or the
# first line of a Go panic, becomes `expected.err`. Exactly one of the two
# exists afterwards.
#
# Needs only bash, coreutils and the confd binary.
set -eu

if [ $# -lt 1 ]; then
    echo "usage: $0 PATH_TO_CONFD [CASE...]" >&2
    exit 2
fi
confd=$1
shift
case $confd in
    /*) ;;
    *) confd=$PWD/$confd ;;
esac
[ -x "$confd" ] || { echo "$0: $confd is not executable" >&2; exit 2; }

cases=$(cd "$(dirname "$0")" && pwd)/cases
if [ $# -eq 0 ]; then
    set -- $(cd "$cases" && LC_ALL=C ls -d -- */ | sed 's#/$##')
fi

status=0
for name in "$@"; do
    name=${name%/}
    name=${name##*/}
    dir=$cases/$name
    if [ ! -f "$dir/template.tmpl" ] || [ ! -f "$dir/data.yaml" ] || [ ! -f "$dir/case.toml" ]; then
        echo "$0: $name: needs template.tmpl, data.yaml and case.toml" >&2
        status=1
        continue
    fi
    tmp=$(mktemp -d)
    mkdir "$tmp/conf.d" "$tmp/templates"
    cp "$dir/template.tmpl" "$tmp/templates/template.tmpl"
    cp "$dir/data.yaml" "$tmp/data.yaml"

    # case.toml: `keys`, `prefix` and `env` are each one line.
    keys=$(grep -E '^keys[[:space:]]*=' "$dir/case.toml" || echo 'keys = ["/"]')
    prefix=$(grep -E '^prefix[[:space:]]*=' "$dir/case.toml" || true)
    {
        echo '[template]'
        echo 'src = "template.tmpl"'
        echo "dest = \"$tmp/out\""
        echo "$keys"
        if [ -n "$prefix" ]; then echo "$prefix"; fi
    } > "$tmp/conf.d/$name.toml"

    # env = { NAME = "value", OTHER = "" }  (plain double-quoted values, no escapes)
    envs=$(sed -n 's/^env[[:space:]]*=[[:space:]]*{\(.*\)}[[:space:]]*$/\1/p' "$dir/case.toml")
    vars=()
    re='^[[:space:],]*([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=[[:space:]]*"([^"]*)"(.*)$'
    while [[ $envs =~ $re ]]; do
        vars+=("${BASH_REMATCH[1]}=${BASH_REMATCH[2]}")
        envs=${BASH_REMATCH[3]}
    done

    rc=0
    (cd "$tmp" && exec env -i PATH=/usr/bin:/bin TZ=UTC ${vars[@]+"${vars[@]}"} \
        "$confd" -onetime -backend file -file data.yaml -confdir . \
        -config-file confd.toml -log-level error) > "$tmp/log" 2>&1 || rc=$?

    rm -f "$dir/expected" "$dir/expected.err"
    if [ $rc -eq 0 ] && [ -f "$tmp/out" ]; then
        cp "$tmp/out" "$dir/expected"
    else
        line=$(grep -a -m1 -F ']: ERROR ' "$tmp/log" || true)
        if [ -n "$line" ]; then
            line=${line#*\]: ERROR }
        else
            # no ERROR line: a fatal setup error, or a Go panic (first line kept)
            line=$(grep -a -m1 -F ']: FATAL ' "$tmp/log" || true)
            line=${line#*\]: FATAL }
            [ -n "$line" ] || line=$(grep -a -m1 '^panic: ' "$tmp/log" || true)
        fi
        if [ -z "$line" ]; then
            echo "$0: $name: confd exited $rc without an error message:" >&2
            cat "$tmp/log" >&2
            status=1
        fi
        printf '%s\n' "$line" > "$dir/expected.err"
    fi
    rm -rf "$tmp"
done
exit $status
