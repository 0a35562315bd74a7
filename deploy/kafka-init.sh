#!/bin/sh
# Create the topics listed in topics.txt (idempotent). Used by docker-compose's kafka-init job and by hand:
#   BOOTSTRAP=broker:9092 KAFKA_BIN=/opt/kafka/bin sh deploy/kafka-init.sh deploy/topics.txt
set -eu
file="${1:-/topics.txt}"
bin="${KAFKA_BIN:-/opt/kafka/bin}"
rf="${REPLICATION_FACTOR:-1}"
grep -v '^[[:space:]]*#' "$file" | while read -r name partitions config; do
  [ -n "$name" ] || continue
  set -- --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic "$name" \
    --partitions "$partitions" --replication-factor "$rf"
  if [ "$config" != "-" ]; then
    for kv in $(echo "$config" | tr ',' ' '); do set -- "$@" --config "$kv"; done
  fi
  "$bin/kafka-topics.sh" "$@"
done
"$bin/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --list
