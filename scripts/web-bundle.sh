#!/bin/sh
# Writes the console as one HTML file: TEMPLATE with each line that is
# exactly "@inline NAME@" replaced by the bytes of NAME, looked up in
# WEBDIR, or in UPLOTDIR for a NAME starting "uplot/". One file, because
# the binary serves one page at / and the page asks nothing of anyone but
# the cluster: no CDN, no second request for a script.
# usage: web-bundle.sh WEBDIR UPLOTDIR > out.html   (WEBDIR/index.html is the template)
set -eu
[ $# -eq 2 ] || { echo "usage: web-bundle.sh WEBDIR UPLOTDIR > out.html" >&2; exit 2; }
web=$1
uplot=$2
for f in "$web/index.html" "$uplot/uPlot.iife.min.js" "$uplot/uPlot.min.css"; do
	[ -r "$f" ] || { echo "web-bundle: $f is missing (scripts/deps.sh run installs uPlot)" >&2; exit 1; }
done
# Inlined text must not end its element early: "</script" inside a
# script, or "</style" inside a style, would cut it there.
for f in "$web"/*.js "$uplot/uPlot.iife.min.js"; do
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
awk -v web="$web" -v uplot="$uplot" '
/^@inline [A-Za-z0-9_.\/-]+@$/ {
	name = substr($0, 9, length($0) - 9)
	path = name ~ /^uplot\// ? uplot "/" substr(name, 7) : web "/" name
	n = 0
	while ((rc = getline line < path) > 0) {
		print line
		n++
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
