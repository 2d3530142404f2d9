#!/usr/bin/env bash
# Regenerates the tray's state icons (icons/tray/{idle,running,attention}.png) from icons/icon.svg:
# idle is the icon in grey, running adds a green dot, attention an orange dot with "!".
# Needs rsvg-convert (librsvg2-bin) and ImageMagick. Run from the repository root; commit the PNGs.
set -eu
src=icons/icon.svg; out=icons/tray; size=64
mkdir -p "$out"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
convert_bin=/usr/bin/convert; [ -x "$convert_bin" ] || convert_bin=convert
badge() { # COLOR [MARK]: an SVG fragment, a dot at the bottom right
  printf '<circle cx="400" cy="400" r="104" fill="%s" stroke="#ffffff" stroke-width="22"/>%s' "$1" "${2:-}"
}
variant() { # NAME SED-EXPR BADGE
  sed -e "$2" -e "s|</svg>|$3</svg>|" "$src" >"$tmp/$1.svg"
  rsvg-convert -w "$size" -h "$size" "$tmp/$1.svg" -o "$tmp/$1.png"
  "$convert_bin" "$tmp/$1.png" "PNG32:$out/$1.png"
}
variant idle 's/#1e5fb4/#6b7280/g; s/#9fd0ff/#d1d5db/g' ''
variant running 's/x/x/' "$(badge '#16a34a')"
variant attention 's/x/x/' "$(badge '#ea580c' '<rect x="386" y="338" width="28" height="82" rx="12" fill="#ffffff"/><circle cx="400" cy="452" r="16" fill="#ffffff"/>')"
echo "wrote $out/idle.png $out/running.png $out/attention.png"
