#!/usr/bin/env bash
# Install the Debian packages the tests need when they are missing:
#   chromium         the browser Playwright drives (its own browser download does not work here)
#   fonts-ipaexfont  Japanese glyphs for rendered pages and generated PDFs
# Arguments name a subset (make run needs only the fonts: ensure_system_packages.sh fonts-ipaexfont).
# apt-get update runs only when something must be installed. Uses sudo when not root. Recommended
# packages are kept (fonts-liberation etc.) so CI renders pages like a developer's machine.
set -euo pipefail

if [[ $# -gt 0 ]]; then PACKAGES=("$@"); else PACKAGES=(chromium fonts-ipaexfont); fi

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
reinstall=()
for pkg in "${PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done
# A package marked installed whose binary is gone (e.g. removed by hand) gets reinstalled too.
if [[ " ${PACKAGES[*]} " == *" chromium "* && ! " ${missing[*]} " == *" chromium "* ]] \
    && ! command -v /usr/bin/chromium >/dev/null; then
    missing+=(chromium)
    reinstall=(--reinstall)
fi
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "Installing system packages: ${missing[*]}"
fail() {
    echo "ERROR: cannot install ${missing[*]}: $1" >&2
    echo "Install them yourself (apt-get install ${missing[*]}) and re-run." >&2
    exit 1
}
command -v apt-get >/dev/null || fail "apt-get not found (this project expects Debian 12)"
if [[ $(id -u) -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null; then
    # Without a terminal sudo must not wait for a password prompt nobody can answer.
    if [[ -t 0 ]]; then sudo=(sudo); else sudo=(sudo -n); fi
else
    fail "not root and sudo is not available"
fi

export DEBIAN_FRONTEND=noninteractive
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
"${apt[@]}" update -qq || fail "apt-get update failed"
"${apt[@]}" install -y -qq "${reinstall[@]}" "${missing[@]}" >/dev/null \
    || fail "apt-get install failed"
echo "Installed: ${missing[*]}"
