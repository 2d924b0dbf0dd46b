#!/usr/bin/env bash
# Boots the tutorial's board under QEMU against the MQTT broker at
# 127.0.0.1:PORT, as board NAME answering board PEER:
#
#   crates/culex-client/examples/qemu-board/run.sh PORT NAME PEER
#
# This terminal is the board's UART: it prints `LED on` / `LED off`; type `p`
# to press the button, `r` to release it, `q` to quit (Ctrl-C also quits).
# The firmware is built first if needed (the rust target
# riscv32imc-unknown-none-elf, Debian's qemu-system-misc and socat needed).
#
# The board gets NAME and PEER on its kernel command line. Its network is
# QEMU's user network with restrict=on: it can reach nothing but one
# guestfwd, 10.0.2.100:1883, which socat carries to 127.0.0.1:PORT.
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 PORT NAME PEER" >&2
    exit 2
fi
port=$1 name=$2 peer=$3
if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
    echo "run.sh: PORT must be a TCP port, not '$port'" >&2
    exit 2
fi
for n in "$name" "$peer"; do
    if ! [[ $n =~ ^[A-Za-z0-9_-]{1,23}$ ]]; then
        echo "run.sh: names are 1 to 23 letters, digits, '-' or '_', not '$n'" >&2
        exit 2
    fi
done
for tool in qemu-system-riscv32:qemu-system-misc socat:socat; do
    if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
        echo "run.sh: ${tool%%:*} is missing: apt-get install ${tool#*:} (scripts/test installs it)" >&2
        exit 1
    fi
done

here=$(cd "$(dirname "$0")" && pwd)
target=riscv32imc-unknown-none-elf
cargo build --quiet --release --locked --manifest-path "$here/Cargo.toml" \
    --target "$target" --target-dir "$here/target"

exec qemu-system-riscv32 -M virt -bios none -nodefaults -display none \
    -serial stdio \
    -kernel "$here/target/$target/release/culex-qemu-board" \
    -append "name=$name peer=$peer" \
    -netdev "user,id=net0,restrict=on,guestfwd=tcp:10.0.2.100:1883-cmd:socat -lf /dev/null - TCP:127.0.0.1:$port" \
    -device virtio-net-device,netdev=net0
