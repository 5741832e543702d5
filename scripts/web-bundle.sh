#!/bin/sh
# Writes the console as one HTML file: TEMPLATE with each line that is
# exactly "@inline NAME@" replaced by the bytes of NAME, looked up in
# WEBDIR, in UPLOTDIR for a NAME starting "uplot/", in TUSDIR for one
# starting "tus/" (tus-js-client's browser build). One file, because the
# binary serves one page at / and the page asks nothing of anyone but the
# cluster: no CDN, no second request for a script (nor for a source map:
# a "//# sourceMappingURL=" line of an inlined file is left out).
# usage: web-bundle.sh WEBDIR UPLOTDIR TUSDIR > out.html   (WEBDIR/index.html is the template)
set -eu
[ $# -eq 3 ] || { echo "usage: web-bundle.sh WEBDIR UPLOTDIR TUSDIR > out.html" >&2; exit 2; }
web=$1
uplot=$2
tus=$3
for f in "$web/index.html" "$uplot/uPlot.iife.min.js" "$uplot/uPlot.min.css" "$tus/tus.min.js"; do
	[ -r "$f" ] || { echo "web-bundle: $f is missing (scripts/deps.sh run installs uPlot and tus-js-client)" >&2; exit 1; }
done
# Inlined text must not end its element early: "</script" inside a
# script, or "</style" inside a style, would cut it there.
for f in "$web"/*.js "$uplot/uPlot.iife.min.js" "$tus/tus.min.js"; do
	if grep -qi '</script' "$f"; then
		echo "web-bundle: $f holds \"</script\": it cannot be inlined" >&2
		exit 1
	fi
done
for f in "$web"/*.css "$uplot/uPlot.min.css"; do
	if grep -qi '</style' "$f"; then
		echo "web-bundle: $f holds \"</style\": it cannot be inlined" >&2
		exit 1
	fi
done
awk -v web="$web" -v uplot="$uplot" -v tus="$tus" '
/^@inline [A-Za-z0-9_.\/-]+@$/ {
	name = substr($0, 9, length($0) - 9)
	if (name ~ /^uplot\//)
		path = uplot "/" substr(name, 7)
	else if (name ~ /^tus\//)
		path = tus "/" substr(name, 5)
	else
		path = web "/" name
	n = 0
	while ((rc = getline line < path) > 0) {
		n++
		if (line ~ /^\/\/# sourceMappingURL=/)
			continue
		print line
	}
	if (rc < 0 || n == 0) {
		print "web-bundle: cannot read " path > "/dev/stderr"
		exit 1
	}
	close(path)
	next
}
/@inline/ {
	print "web-bundle: a malformed @inline line: " $0 > "/dev/stderr"
	exit 1
}
{ print }
' "$web/index.html"
