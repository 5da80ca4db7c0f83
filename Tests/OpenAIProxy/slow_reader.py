#!/usr/bin/env python3
"""A streaming client that stops reading: over a raw socket with a small receive buffer (so the
proxy's writes to it block soon), it asks for a streamed chat completion, reads the answer's
head, stops reading for --pause seconds, then reads the rest until the proxy closes or the
stream ends. Prints one JSON object: the bytes read and the error codes of the stream's events.

  Tests/OpenAIProxy/slow_reader.py --port PORT --key tgk_... --content "tokens=2000 pad=8000" --pause 5
"""
import argparse, json, re, socket, time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--content", required=True)
    parser.add_argument("--pause", type=float, required=True)
    args = parser.parse_args()
    body = json.dumps({"model": "m", "stream": True, "messages": [{"role": "user", "content": args.content}]}).encode()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Set before connecting, so the window the proxy is offered stays small.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", args.port))
    sock.sendall(b"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 + f"Authorization: Bearer {args.key}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    received = sock.recv(4096)
    time.sleep(args.pause)
    sock.settimeout(60)
    finished = False
    try:
        while True:
            data = sock.recv(1 << 20)
            if not data:
                break
            received += data
            if received.endswith(b"0\r\n\r\n"):
                finished = True
                break
    except OSError:
        pass
    sock.close()
    codes = re.findall(rb'"code": ?"(\w+)"', received)
    print(json.dumps({"status": received.split(b" ", 2)[1].decode() if received.startswith(b"HTTP/") else None,
                      "bytes": len(received), "finished": finished, "error_codes": [c.decode() for c in codes],
                      "done": b"data: [DONE]" in received}))


if __name__ == "__main__":
    main()
