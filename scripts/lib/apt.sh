# Sourced by the scripts that install Debian packages they need (bash).
# apt_install PKG...: installs the packages (no recommends), as root or through sudo.
apt_install() {
  (($#)) || return 0
  local sudo_=()
  [[ $(id -u) -eq 0 ]] || sudo_=(sudo)
  echo "installing $*" >&2
  "${sudo_[@]}" apt-get update -qq >&2
  "${sudo_[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@" >&2
}
