#!/bin/sh
# deps.sh [--list | --dry-run] GROUP... - install the Debian packages of the named groups
# of scripts/packages.txt (build, run, test, container, fuzz, bench); silent and quick
# when they are all installed. --list prints the groups' packages, --dry-run those it
# would install; neither installs anything.
set -eu
list=$(dirname "$0")/packages.txt
mode=install
case ${1:-} in
--list | --dry-run)
    mode=${1#--}
    shift
    ;;
esac
if [ $# -eq 0 ]; then
    echo "usage: $0 [--list | --dry-run] GROUP... (groups: build run test container fuzz bench)" >&2
    exit 2
fi

# The packages of the groups asked for, each once, in the list's order: "PACKAGE" or
# "PACKAGE COMMAND" for one that counts as installed when COMMAND is found.
entries=$(awk -v want=" $* " '
    /^[a-z]/ {
        n = split($1, groups, ",")
        for (i = 1; i <= n; i++) {
            known[groups[i]] = 1
            if (index(want, " " groups[i] " ") && !($2 in seen)) {
                seen[$2] = 1
                print $2 ($3 ~ /^command:/ ? " " substr($3, 9) : "")
            }
        }
    }
    END {
        n = split(want, asked, " ")
        for (i = 1; i <= n; i++)
            if (!(asked[i] in known)) {
                print "deps: unknown group " asked[i] " (see " FILENAME ")" > "/dev/stderr"
                exit 2
            }
    }' "$list")
pkgs=$(echo "$entries" | cut -d' ' -f1)

if [ "$mode" = list ]; then
    printf '%s\n' $pkgs
    exit 0
fi

# dpkg-query names only the packages it knows; anything not "ii" is missing.
installed=" $(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' $pkgs 2>/dev/null |
    awk '$1 == "ii" { printf "%s ", $2 }') " || true
missing=""
while read -r p command; do
    if [ -n "$command" ]; then
        command -v "$command" >/dev/null && continue
    else
        case $installed in *" $p "*) continue ;; esac
    fi
    missing="$missing $p"
done <<EOF
$entries
EOF
[ -n "$missing" ] || exit 0

if [ "$mode" = dry-run ]; then
    echo "deps: would install$missing"
    exit 0
fi
echo "deps: installing$missing"
if ! command -v apt-get >/dev/null; then
    echo "deps: no apt-get here; install the Debian 12 packages$missing yourself" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
        echo "deps: run as root (or install sudo) to install$missing" >&2
        exit 1
    fi
    sudo=sudo
fi
# sudo resets the environment, so apt-get gets its front end on its command line.
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
