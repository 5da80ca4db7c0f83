#!/usr/bin/env python3
"""An upstream for the OpenAI proxy's tests and benchmark: speaks OpenAI's wire format
(chat completions streamed and not, completions, embeddings, models, errors) with behaviour
chosen by the request, and records every request it got.

The last user message (or the prompt, or the embedding input) may carry directives as
`key=value` words; anything else is ignored:
  tokens=N        answer with N output tokens, one chunk each (default 5)
  prompt=N        report N prompt tokens in usage (default: words of the input)
  delay_ms=N      wait N ms before each chunk (default 0)
  first_ms=N      wait N ms before the answer's head (default 0)
  fail=500        answer 500 with an OpenAI error body
  fail=429        answer 429 as OpenAI does, its message naming the organization (ORGANIZATION)
  fail=hang       never answer (the proxy's upstream timeout ends it)
  fail=drop:K     stream K chunks, then close the connection mid-answer
  fail=stall:K    stream K chunks, then say nothing more (keeps the connection open)
  fail=error:K    stream K chunks, then an error event naming the organization
  usage=none      send no usage (not even when asked for)
  pad=N           add N bytes to each chunk, in a field the proxy ignores (a large answer of few tokens)

Each chunk's content is " tok" (4 characters: one token by the proxy's estimate).
GET /_log answers what it got: per request the path, headers that matter, the body, how many
chunks it wrote and whether the client went away before the end. It prints
`upstream listening on PORT` once it listens (port 0 picks a free one).

  Tests/OpenAIProxy/upstream_server.py --port 0
"""
import argparse, json, re, socket, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG, LOCK = [], threading.Lock()
ORGANIZATION = "org-TollgateOperator7f3a"
CONTENT = " tok"


def directives(body, path):
    text = ""
    if path.endswith("/chat/completions"):
        for message in body.get("messages") or []:
            if isinstance(message, dict) and message.get("role") == "user" and isinstance(message.get("content"), str):
                text = message["content"]
    elif path.endswith("/completions"):
        prompt = body.get("prompt")
        text = prompt if isinstance(prompt, str) else " ".join(p for p in prompt or [] if isinstance(p, str))
    elif path.endswith("/embeddings"):
        given = body.get("input")
        text = given if isinstance(given, str) else " ".join(p for p in given or [] if isinstance(p, str))
    found = dict(re.findall(r"(\w+)=([\w:]+)", text))
    found.setdefault("prompt", str(max(1, len(text.split()))))
    return found


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self, body):
        entry = {"path": self.path, "method": self.command, "authorization": self.headers.get("Authorization"),
                 "body": body, "chunks": 0, "aborted": False, "finished": False}
        with LOCK:
            LOG.append(entry)
        return entry

    def do_GET(self):
        if self.path == "/_log":
            with LOCK:
                return self.send_json(200, list(LOG))
        entry = self.record(None)
        entry["finished"] = True
        if self.path.endswith("/models"):
            return self.send_json(200, {"object": "list", "data": [
                {"id": "m", "object": "model", "created": 1700000000, "owned_by": "test"},
                {"id": "e", "object": "model", "created": 1700000000, "owned_by": "test"}]})
        if "/models/" in self.path:
            return self.send_json(200, {"id": self.path.rsplit("/", 1)[1], "object": "model", "created": 1700000000, "owned_by": "test"})
        self.send_json(404, {"error": {"message": "no such route", "type": "invalid_request_error", "param": None, "code": None}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            return self.send_json(400, {"error": {"message": "bad json", "type": "invalid_request_error", "param": None, "code": None}})
        entry = self.record(body)
        d = directives(body, self.path)
        if int(d.get("first_ms", 0)):
            time.sleep(int(d["first_ms"]) / 1000)
        fail = d.get("fail", "")
        if fail == "500":
            entry["finished"] = True
            return self.send_json(500, {"error": {"message": "upstream exploded", "type": "server_error", "param": None, "code": None}})
        if fail == "429":
            # As OpenAI words it: the operator's organization and limits are in the message.
            entry["finished"] = True
            return self.send_json(429, {"error": {
                "message": f"Rate limit reached for {body.get('model')} in organization {ORGANIZATION} on tokens per min (TPM): Limit 30000, Used 29990",
                "type": "tokens", "param": None, "code": "rate_limit_exceeded"}})
        if fail == "hang":
            time.sleep(3600)
            return
        prompt, tokens, delay = int(d["prompt"]), int(d.get("tokens", 5)), int(d.get("delay_ms", 0)) / 1000
        usage = {"prompt_tokens": prompt, "completion_tokens": tokens, "total_tokens": prompt + tokens}
        model = body.get("model")
        if self.path.endswith("/embeddings"):
            inputs = body.get("input")
            count = len(inputs) if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else 1
            entry["finished"] = True
            return self.send_json(200, {"object": "list", "model": model, "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
                                        "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(count)]})
        chat = self.path.endswith("/chat/completions")
        if not body.get("stream"):
            if delay:
                time.sleep(delay * tokens)
            choice = ({"index": 0, "message": {"role": "assistant", "content": CONTENT * tokens}, "finish_reason": "stop"} if chat
                      else {"index": 0, "text": CONTENT * tokens, "finish_reason": "stop", "logprobs": None})
            answer = {"id": "cmpl-1", "object": "chat.completion" if chat else "text_completion", "created": 1700000000,
                      "model": model, "choices": [choice]}
            if d.get("usage") != "none":
                answer["usage"] = usage
            entry["finished"] = True
            return self.send_json(200, answer)
        self.stream(entry, body, chat, model, tokens, delay, usage, d)

    def stream(self, entry, body, chat, model, tokens, delay, usage, d):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        kind = "chat.completion.chunk" if chat else "text_completion"
        wants_usage = (body.get("stream_options") or {}).get("include_usage") is True and d.get("usage") != "none"

        padding = "x" * int(d.get("pad", 0))

        def chunk(choices, extra=None):
            value = {"id": "chunk-1", "object": kind, "created": 1700000000, "model": model, "choices": choices}
            if padding:
                value["padding"] = padding
            if wants_usage:
                value["usage"] = None
            value.update(extra or {})
            self.send_event(json.dumps(value))

        fail = d.get("fail", "")
        stop_after = int(fail.split(":")[1]) if ":" in fail else None
        try:
            if chat:
                chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            for i in range(tokens):
                if stop_after is not None and i == stop_after:
                    if fail.startswith("error"):
                        # An error event mid-stream, as OpenAI words one (naming the organization).
                        self.send_event(json.dumps({"error": {"message": f"Rate limit reached in organization {ORGANIZATION}",
                                                              "type": "tokens", "param": None, "code": "rate_limit_exceeded"}}))
                        self.wfile.write(b"0\r\n\r\n")
                        self.wfile.flush()
                        entry["finished"] = True
                        return
                    if fail.startswith("drop"):
                        entry["finished"] = True
                        # A clean close (FIN after the chunks sent), then wait for the proxy to
                        # close its side: closing at once could answer its next segment with a
                        # reset, and a reset makes the proxy's kernel drop the chunks it has not
                        # read yet, so what the client receives would be a race.
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_WR)
                        self.connection.settimeout(10)
                        try:
                            while self.connection.recv(65536):
                                pass
                        except OSError:
                            pass
                        return
                    time.sleep(3600)
                if delay:
                    time.sleep(delay)
                if chat:
                    chunk([{"index": 0, "delta": {"content": CONTENT}, "finish_reason": None}])
                else:
                    chunk([{"index": 0, "text": CONTENT, "finish_reason": None, "logprobs": None}])
                entry["chunks"] += 1
            if chat:
                chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
            else:
                chunk([{"index": 0, "text": "", "finish_reason": "stop", "logprobs": None}])
            if wants_usage:
                chunk([], {"usage": usage})
            self.send_event("[DONE]")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            entry["finished"] = True
        except (BrokenPipeError, ConnectionResetError, OSError):
            entry["aborted"] = True

    def send_event(self, data):
        payload = f"data: {data}\n\n".encode()
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        # A client closing its keep-alive connection (the proxy's pool at shutdown, a cut
        # stream) is ordinary here; anything else is printed.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = Server(("127.0.0.1", args.port), Handler)
    print(f"upstream listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
