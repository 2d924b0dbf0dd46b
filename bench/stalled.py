"""A `#` subscriber that never reads, while a publisher floods 64 kB messages.

Issue 15, item 10. Reports the broker's resident memory during the flood
and after the stalled subscriber leaves, and the delay of an unrelated
pair's messages meanwhile (a client publishing a time stamp on `lat/t`
every 10 ms to a subscriber that reads it; the `#` subscriber matches it
too, as a monitoring tool would).

    bench/stalled.py PORT PID [MEGABYTES]

PORT and PID are the broker's (started beforehand, e.g. `culex broker -p
PORT` or `mosquitto -p PORT`). Sends MEGABYTES (default 500) of QoS 0, then
as much of QoS 1, on loopback only.
"""
import socket
import struct
import sys
import threading
import time

MSG = 64 * 1024


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def packet(kind, body):
    return bytes([kind]) + varint(len(body)) + body


def s16(b):
    return struct.pack(">H", len(b)) + b


def connect(port, cid):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body = s16(b"MQTT") + bytes([4, 2]) + struct.pack(">H", 60) + s16(cid.encode())
    s.sendall(packet(0x10, body))
    read_packet(s)
    return s


def read_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def read_packet(s):
    head = read_exact(s, 1)[0]
    mult, length = 1, 0
    while True:
        b = read_exact(s, 1)[0]
        length += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            break
    return head, read_exact(s, length)


def subscribe(s, topic, qos):
    s.sendall(packet(0x82, struct.pack(">H", 1) + s16(topic.encode()) + bytes([qos])))
    read_packet(s)


def publish(topic, payload, qos, pid=0):
    body = s16(topic.encode())
    if qos:
        body += struct.pack(">H", pid)
    return packet(0x30 | (qos << 1), body + payload)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    megabytes = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    count = megabytes * 1024 * 1024 // MSG
    stalled = connect(port, "stalled")
    subscribe(stalled, "#", 1)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

    lat_sub = connect(port, "lat-sub")
    subscribe(lat_sub, "lat/t", 0)
    lat_pub = connect(port, "lat-pub")
    delays = []
    done = threading.Event()

    def read_latency():
        lat_sub.settimeout(1.0)
        while not done.is_set():
            try:
                _, body = read_packet(lat_sub)
            except (socket.timeout, EOFError, OSError):
                continue
            tlen = struct.unpack(">H", body[:2])[0]
            sent = struct.unpack(">d", body[2 + tlen:2 + tlen + 8])[0]
            delays.append(time.time() - sent)

    def send_latency():
        while not done.is_set():
            lat_pub.sendall(publish("lat/t", struct.pack(">d", time.time()), 0))
            time.sleep(0.01)

    threading.Thread(target=read_latency, daemon=True).start()
    threading.Thread(target=send_latency, daemon=True).start()

    flood = connect(port, "flood")
    peak = 0
    payload = bytes(MSG)
    started = time.time()
    for i in range(count):
        flood.sendall(publish("flood/x", payload, 0))
        if i % 64 == 0:
            peak = max(peak, rss_kb(pid))
    acks = [0]

    def read_acks():
        flood.settimeout(10)
        try:
            while acks[0] < count:
                read_packet(flood)
                acks[0] += 1
        except (socket.timeout, EOFError, OSError):
            pass

    reader = threading.Thread(target=read_acks)
    reader.start()
    for i in range(count):
        flood.sendall(publish("flood/y", payload, 1, i % 65535 + 1))
        if i % 64 == 0:
            peak = max(peak, rss_kb(pid))
    reader.join()
    flood_secs = time.time() - started
    during = rss_kb(pid)
    stalled.close()
    time.sleep(3)
    after = rss_kb(pid)
    done.set()
    delays.sort()
    worst = delays[-1] * 1000 if delays else float("nan")
    p99 = delays[int(len(delays) * 0.99)] * 1000 if delays else float("nan")
    print(
        f"flood {2 * megabytes} MB in {flood_secs:.1f} s, QoS 1 acked {acks[0]}/{count}; "
        f"RSS peak {peak // 1024} MB, at the end {during // 1024} MB, "
        f"3 s after the stalled subscriber left {after // 1024} MB; "
        f"unrelated pair: {len(delays)} messages, p99 {p99:.1f} ms, worst {worst:.1f} ms"
    )


if __name__ == "__main__":
    main()
