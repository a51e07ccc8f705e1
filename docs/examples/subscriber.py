"""Reference subscriber for `handtrack --stream --out zmq://...`: prints one summary line per message.

    handtrack --stream --source demo --out zmq://127.0.0.1:5556 &
    python3 docs/examples/subscriber.py --connect tcp://127.0.0.1:5556 [--msgpack] [--count 100] [--all]

By default the socket conflates (ZMQ_CONFLATE): it keeps only the newest message, which is what a robot controller
wants; --all queues every message instead (they can still be dropped by the publisher, which never waits for a
slow subscriber). Gaps in `seq` are messages this subscriber never saw; they are counted. The "received" latency
compares the message's host_monotonic_s with this process's monotonic clock, so it is only meaningful on the same
machine as the publisher. Needs pyzmq (and msgpack for --msgpack), not handtrack.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import zmq


def summary(message: dict, received_monotonic: float, missed: int) -> str:
    hand = message["hands"][0] if message["hands"] else None
    where = "no hand"
    if hand and hand["present"]:
        frame = message.get("base_frame_id") or message["frame_id"]
        joints = hand["joints_base_m"] if message.get("base_frame_id") else hand["joints_m"]
        x, y, z = joints[0]
        where = f"{hand['handedness']} hand, score {hand['score']:.2f}, wrist ({x:+.3f}, {y:+.3f}, {z:+.3f}) m in {frame}"
    received_ms = (received_monotonic - message["stamp"]["host_monotonic_s"]) * 1e3
    return (f"seq {message['seq']:>6} frame {message['frame_index']:>6} | {where} | latency built "
            f"{message['latency_ms']['end_to_end']:.1f} ms, received {received_ms:.1f} ms | missed {missed}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print a summary of each handtrack stream message.")
    parser.add_argument("--connect", default="tcp://127.0.0.1:5556",
                        help="the publisher's address (tcp://HOST:PORT; zmq://HOST:PORT is accepted too)")
    parser.add_argument("--msgpack", action="store_true", help="the stream is zmq+msgpack://")
    parser.add_argument("--count", type=int, help="exit after this many messages")
    parser.add_argument("--all", action="store_true", help="queue every message instead of keeping the newest")
    parser.add_argument("--timeout", type=float, default=10.0, help="give up after this many seconds of silence")
    args = parser.parse_args(argv)
    if args.msgpack:
        import msgpack
        decode = msgpack.unpackb
    else:
        decode = json.loads
    address = args.connect.replace("zmq+msgpack://", "tcp://").replace("zmq://", "tcp://")

    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    if not args.all:
        socket.setsockopt(zmq.CONFLATE, 1)  # set before connect: it applies to the connection's queue
    socket.setsockopt(zmq.SUBSCRIBE, b"")
    socket.connect(address)
    received, missed, last_seq = 0, 0, None
    try:
        while args.count is None or received < args.count:
            if not socket.poll(int(args.timeout * 1000)):
                print(f"no message from {address} for {args.timeout:g} s; giving up", file=sys.stderr)
                return 1
            data = socket.recv()
            now = time.monotonic()
            message = decode(data)
            if last_seq is not None and message["seq"] > last_seq + 1:
                missed += message["seq"] - last_seq - 1
            last_seq = message["seq"]
            received += 1
            print(summary(message, now, missed), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        socket.close(linger=0)
        context.term()
    print(f"{received} messages received, {missed} missed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
