# PID 1 of the hello plugin: listen on :8080, one forked handler per connection, and exit on
# SIGTERM (a shell as PID 1 ignores it unless trapped, which would make every stop take the
# engine's full grace period).
trap 'kill "$child" 2>/dev/null; exit 0' TERM INT
/bin/busybox nc -ll -p 8080 -e /bin/busybox sh /app/handle.sh &
child=$!
wait "$child"
