# Sourced by the scripts that need Debian packages (scripts/test.sh: chromium for the runbook's
# browser test; the Windows lane: Wine and mingw-w64). apt_install PACKAGE... installs the ones
# that are not installed yet, as root or through `sudo -n`, and exits non-zero saying what to
# do when it cannot: a test that needs them then fails instead of being skipped.

_apt_die() {
  echo "error: $*" >&2
  exit 1
}

_apt_updated=
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null ||
    _apt_die "cannot install ${missing[*]}: this machine has no apt-get
help: install them with the system's package manager, then run this script again"
  local sudo=
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null ||
      _apt_die "cannot install ${missing[*]}: not root and no sudo
help: run this script as root once, or install them: apt-get install ${missing[*]}"
    sudo="sudo -n"
  fi
  echo "installing ${missing[*]}" >&2
  if [ -z "$_apt_updated" ]; then
    $sudo apt-get update -qq || _apt_die "apt-get update failed
help: check that this machine reaches its Debian package mirror"
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" ||
    _apt_die "apt-get install ${missing[*]} failed
help: check that this machine reaches its Debian package mirror"
}

