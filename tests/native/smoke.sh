#!/bin/bash
# tests/native/smoke.sh: end-to-end check of serpens-gen against serpens-wire.
#
# Why: the C data plane is only trustworthy if every packet is accounted for
# (gen tx == gen rx + dut_rx_full + wire tx_dropped), the field engine really
# varies the packets, latency comes back, bad profiles and a missing peer fail
# with the documented exit codes, and nothing is left in /dev/hugepages.
#
# Needs root, hugepages and a build:  meson setup build/native native &&
# ninja -C build/native;  then:  bash tests/native/smoke.sh [BUILD_DIR]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build/native}
gen=$build/generator/serpens-gen
wire=$build/wire/serpens-wire
tmp=$(mktemp -d /tmp/serpens-smoke.XXXXXX)
prefix=serpens-smoke-$$
sock=$tmp/memif.sock
wire_pid=

cleanup() {
	if [ -n "$wire_pid" ] && kill -0 "$wire_pid" 2>/dev/null; then
		kill -TERM "$wire_pid"; wait "$wire_pid" || true
	fi
	rm -f /dev/hugepages/${prefix}map_*
	rm -rf "/var/run/dpdk/$prefix" "$tmp"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

gen_run() {  # gen_run SOCKET EXTRA_APP_ARGS...
	local s=$1; shift
	"$gen" -l 1 --in-memory --no-pci --no-telemetry --log-level='*:warning' \
		--vdev "net_memif0,role=client,socket=$s,id=0" -- "$@"
}

# 1. serpens-wire comes up and says READY.
"$wire" -l 0 --file-prefix "$prefix" --no-pci --no-telemetry --log-level='*:warning' \
	--vdev "net_memif0,role=server,socket=$sock,id=0" \
	-- --stats "$tmp/wire.json" > "$tmp/wire.out" 2> "$tmp/wire.err" &
wire_pid=$!
for _ in $(seq 100); do
	grep -qx READY "$tmp/wire.out" 2>/dev/null && break
	kill -0 "$wire_pid" 2>/dev/null || fail "serpens-wire died: $(cat "$tmp/wire.err")"
	sleep 0.1
done
grep -qx READY "$tmp/wire.out" || fail "no READY from serpens-wire"

# 2. A 2 s trial: 1 Mpps field-engine stream + 1 kpps latency stream.
gen_run "$sock" --streams "$here/streams_smoke.json" --duration 2 \
	--report "$tmp/gen.json" --capture "$tmp/cap.pcap" --capture-count 300 \
	> "$tmp/gen.out" || fail "serpens-gen exited $?"
cat "$tmp/gen.out"
kill -USR1 "$wire_pid"; sleep 0.5

# 3. Error paths: unsupported stream -> 2; no peer -> 3.
python3 - "$here/streams_smoke.json" "$tmp/bad.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["streams"][0]["mode"]["rate"] = {"type": "percentage", "value": 10}
json.dump(s, open(sys.argv[2], "w"))
PY
rc=0; gen_run "$sock" --streams "$tmp/bad.json" --duration 1 \
	--report "$tmp/bad-report.json" > /dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "unsupported stream: exit $rc, expected 2"
rc=0; gen_run "$tmp/nobody.sock" --streams "$here/streams_smoke.json" \
	--duration 1 --report "$tmp/x.json" --link-timeout-s 1 \
	> /dev/null 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "missing peer: exit $rc, expected 3"

# 4. serpens-wire exits cleanly on SIGTERM, writing final stats.
kill -TERM "$wire_pid"; wait "$wire_pid" || fail "serpens-wire exit status $?"
wire_pid=
ls /dev/hugepages/${prefix}map_* > /dev/null 2>&1 && fail "hugepage files left"

python3 "$here/check_smoke.py" "$tmp/gen.json" "$tmp/wire.json" "$tmp/cap.pcap"
echo "smoke: ok"
