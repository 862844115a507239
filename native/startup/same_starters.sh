#!/bin/sh
# same_starters.sh SERPENSD STARTBENCH: both list the same startup methods from the one starter table they
# link (native/serpens/startup; docs/startup.md). Fails if either stops using it, or lists nothing.
set -e
a=$("$1" --starters)
b=$("$2" --starters)
[ -n "$a" ] || { echo "$1 lists no starters"; exit 1; }
[ "$a" = "$b" ] || { printf '%s lists:\n%s\n%s lists:\n%s\n' "$1" "$a" "$2" "$b"; exit 1; }
for m in exec fork load thread snapshot serpens; do
	echo "$a" | grep -q "^$m " || { echo "no starter '$m'"; exit 1; }
done
