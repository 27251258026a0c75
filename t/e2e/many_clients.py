"""Sends requests from many distinct client addresses (X-Forwarded-For, for nginx's realip)
over a few keep-alive connections, pipelined in batches, and prints how many responses had
each status, as `STATUS COUNT` lines.

    python3 many_clients.py PORT PATH FIRST COUNT [USER_AGENT]

Client n (FIRST <= n < FIRST + COUNT) is the address 10.x.y.z with x.y.z = n in base 256.
"""
import collections
import socket
import sys

CONNECTIONS = 4
BATCH = 200


def address(n):
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def read_responses(sock, count, buffer):
    """Reads `count` responses; returns their statuses and what is left over."""
    statuses = []
    while len(statuses) < count:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit(f"the connection closed after {len(statuses)} of {count} responses")
            buffer += chunk
            continue
        head = buffer[:end].decode("latin-1").split("\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        while len(buffer) < end + 4 + length:
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit("the connection closed in the middle of a body")
            buffer += chunk
        statuses.append(int(head[0].split()[1]))
        buffer = buffer[end + 4 + length:]
    return statuses, buffer


def main():
    port, path, first, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    user_agent = sys.argv[5] if len(sys.argv) > 5 else \
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
    buffers = [b""] * CONNECTIONS
    counts = collections.Counter()
    n = first
    while n < first + count:
        # One batch on every connection, then the answers: the workers serve them in parallel.
        sent = []
        for i, sock in enumerate(socks):
            batch = range(n, min(n + BATCH, first + count))
            n = batch.stop
            sock.sendall(b"".join(
                f"GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {user_agent}\r\n"
                f"X-Forwarded-For: {address(c)}\r\n\r\n".encode() for c in batch))
            sent.append(len(batch))
        for i, sock in enumerate(socks):
            statuses, buffers[i] = read_responses(sock, sent[i], buffers[i])
            counts.update(statuses)
    for status, number in sorted(counts.items()):
        print(status, number)


if __name__ == "__main__":
    main()
