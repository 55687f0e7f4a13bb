#!/bin/sh
# expect-status.sh STATUS TEXT CMD...: passes iff CMD exits with STATUS and its
# output contains TEXT (so a skip is told apart from a pass or a crash).
want=$1 text=$2
shift 2
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out"
if [ "$rc" -ne "$want" ]; then
  echo "expect-status: exit status $rc, expected $want" >&2
  exit 1
fi
case $out in
  *"$text"*) exit 0 ;;
esac
echo "expect-status: output lacks \"$text\"" >&2
exit 1
