#!/usr/bin/env bash
# Installs (once) the Debian packages used to look at a report as a person
# would, and renders one: the HTML in headless Chromium as a full-page PNG
# screenshot, the PDF's pages as PNGs. Not used by CI.
#
# usage: scripts/report-tools.sh install            apt-get the tools unless present
#        scripts/report-tools.sh render DIR [OUT]   DIR/report.html -> OUT/html.png,
#                                                   DIR/report.pdf  -> OUT/pdf-N.png
#                                                   (OUT defaults to DIR/look; HEIGHT, default
#                                                   40000, is the screenshot's height in px)
set -euo pipefail

usage() {
  sed -n '2,11p' "$0" >&2
}

install_tools() {
  local missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
  [ "${#missing[@]}" -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "report-tools.sh: installing ${missing[*]}" >&2
  $sudo apt-get update
  $sudo apt-get install -y "${missing[@]}"
}

render() { # $1 = results folder, $2 = output folder
  local dir out
  dir="$(cd "$1" && pwd)"
  out="${2:-$dir/look}"
  mkdir -p "$out"
  install_tools
  # A tall window: the screenshot is the page from the top down to HEIGHT px
  # (white below the page's end).
  chromium --headless --disable-gpu --no-sandbox --hide-scrollbars \
    --screenshot="$out/html.png" --window-size="1280,${HEIGHT:-40000}" "file://$dir/report.html" >/dev/null 2>&1
  pdftoppm -png -r 60 "$dir/report.pdf" "$out/pdf"
  ls "$out"
}

case "${1:-}" in
  install) install_tools ;;
  render) [ $# -ge 2 ] || { usage; exit 2; }; render "$2" "${3:-}" ;;
  -h|--help) usage ;;
  *) usage; exit 2 ;;
esac
