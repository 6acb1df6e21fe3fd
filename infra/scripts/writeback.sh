#!/usr/bin/env bash
# The kernel's background writeback, set as on a database host, for make bench.
#
# With the defaults (background writeback from 10 % of memory, data written back once it
# is 30 s old) a write-heavy Postgres keeps half a minute of table growth dirty in the
# page cache (a relation grows by pages written now and fsynced only at the next
# checkpoint) and the flusher writes it in one burst: about 250 MB at 4,000 card status
# changes a second, which stalled every WAL flush, and so every commit, for 300 ms once
# every 30 s (measured with vmstat and /proc/meminfo Dirty against the bench's slow
# requests). A database host writes back continuously instead: vm.dirty_background_bytes.
#
#   writeback.sh set             prints the current setting, then applies 32 MiB
#   writeback.sh restore SAVED   puts back the setting that set printed
set -euo pipefail
bytes=/proc/sys/vm/dirty_background_bytes ratio=/proc/sys/vm/dirty_background_ratio
db_host_bytes=$((32 << 20))

case "${1:-}" in
set)
	echo "$(cat "$bytes") $(cat "$ratio")"
	if ! (echo "$db_host_bytes" >"$bytes") 2>/dev/null; then
		echo "writeback: cannot set vm.dirty_background_bytes (needs root); loss-report's figures will include the kernel's 30 s writeback bursts" >&2
	fi
	;;
restore)
	read -r was_bytes was_ratio <<<"${2:-}"
	if [ "${was_bytes:-0}" -gt 0 ]; then
		(echo "$was_bytes" >"$bytes") 2>/dev/null || true
	elif [ -n "${was_ratio:-}" ]; then
		(echo "$was_ratio" >"$ratio") 2>/dev/null || true
	fi
	;;
*)
	echo "usage: $0 set | restore 'BYTES RATIO'" >&2
	exit 2
	;;
esac
