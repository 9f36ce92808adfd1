# A plugin's HTTP server in busybox sh. As PID 1 it runs busybox nc on 0.0.0.0:8080, which runs
# this script again ("handle") for each connection: one HTTP/1.0 exchange on stdin/stdout.
# Replace it with your own server: anything that listens on port 8080 on every address and
# answers the endpoints manifest.yaml declares (JSON in, JSON out) will do.
bb=/bin/busybox
if [ "$1" != handle ]; then
  # A shell as PID 1 ignores SIGTERM unless it traps it: every stop would wait for the kill.
  trap 'kill "$nc" 2>/dev/null; exit 0' TERM INT
  $bb nc -ll -p 8080 -e $bb sh "$0" handle &
  nc=$!
  wait "$nc"
  exit 0
fi

cr=$($bb printf '\r')
read -r method path _version
path=${path%%\?*}
len=0
while read -r line; do
  line=${line%"$cr"}
  [ -z "$line" ] && break
  case "$line" in
    [Cc]ontent-[Ll]ength:*) len=$($bb echo "${line#*:}" | $bb tr -cd 0-9) ;;
  esac
done
[ -n "$len" ] && [ "$len" -le 65536 ] || len=0
body=""
[ "$len" -gt 0 ] && body=$($bb head -c "$len")

reply() {  # STATUS JSON
  $bb printf 'HTTP/1.0 %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
    "$1" "${#2}" "$2"
}
case "$method $path" in
  "GET /greet") reply "200 OK" '{"greeting":"hello"}' ;;
  "POST /echo") reply "200 OK" "${body:-null}" ;;
  *) reply "404 Not Found" '{"error":"no such endpoint"}' ;;
esac
