# One HTTP/1.0 exchange on stdin/stdout for the hello plugin's declared endpoints:
#   GET  /health -> {"status":"ok"}
#   POST /greet  -> {"greeting":"<greeting>, <body's name or world>","plugin":"hello","version":"0.1.0"}
# <greeting> is the content of /app/greeting (the tests build a second image with another one).
# Anything else: 404 (undeclared endpoints do not exist) or 405.
bb=/bin/busybox
cr=$($bb printf '\r')
read -r method path _proto
len=0
while read -r line; do
  line=${line%"$cr"}
  [ -z "$line" ] && break
  case "$line" in
    [Cc]ontent-[Ll]ength:*) len=${line#*:}; len=$($bb echo $len | $bb tr -cd 0-9) ;;
  esac
done
[ -n "$len" ] || len=0
[ "$len" -le 4096 ] || len=4096
body=""
[ "$len" -gt 0 ] && body=$($bb head -c "$len")

reply() {  # status, json
  $bb printf 'HTTP/1.0 %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
    "$1" "${#2}" "$2"
}
case "$path" in
  /health)
    if [ "$method" = GET ]; then reply "200 OK" '{"status":"ok"}'; else reply "405 Method Not Allowed" '{"error":"method"}'; fi ;;
  /greet)
    if [ "$method" = POST ]; then
      # Only letters, digits and spaces survive into the reply: no JSON injection from the caller.
      name=$($bb echo "$body" | $bb sed -n 's/.*"name"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' | $bb tr -cd 'A-Za-z0-9 ')
      [ -n "$name" ] || name=world
      greeting=$($bb tr -cd 'A-Za-z0-9' < /app/greeting)
      reply "200 OK" "{\"greeting\":\"${greeting:-hello}, $name\",\"plugin\":\"hello\",\"version\":\"0.1.0\"}"
    else reply "405 Method Not Allowed" '{"error":"method"}'; fi ;;
  *) reply "404 Not Found" '{"error":"no such endpoint"}' ;;
esac
