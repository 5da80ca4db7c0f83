#!/usr/bin/env python3
"""The official `openai` SDK as a customer's code calls Tollgate's proxy: one scenario per
run, its outcome printed as one JSON object (what the SDK returned or raised). The Swift
tests (OpenAIProxyTests) start the servers, run this and check the books.

  client.py --base-url http://127.0.0.1:PORT/openai/v1 --key tgk_... chat --stream --content "tokens=5"
"""
import argparse, asyncio, http.client, json, socket, struct, sys, time
from urllib.parse import urlsplit

import openai


def error_of(exc):
    out = {"class": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, openai.APIStatusError):
        out["status"] = exc.status_code
        out["retry_after"] = exc.response.headers.get("retry-after")
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        out["code"] = body.get("code") if "code" in body else (body.get("error") or {}).get("code")
        out["type"] = body.get("type") if "type" in body else (body.get("error") or {}).get("type")
    return out


def client(args):
    return openai.OpenAI(base_url=args.base_url, api_key=args.key, max_retries=0, timeout=60)


def chat(args):
    c = client(args)
    kwargs = {"model": args.model, "messages": [{"role": "user", "content": args.content}]}
    if args.max_tokens:
        kwargs["max_tokens"] = args.max_tokens
    out = {"content": "", "chunks": 0}
    try:
        if args.stream:
            if args.include_usage:
                kwargs["stream_options"] = {"include_usage": True}
            stream = c.chat.completions.create(stream=True, **kwargs)
            for chunk in stream:
                if chunk.usage:
                    out["usage"] = chunk.usage.model_dump()
                for choice in chunk.choices:
                    if choice.delta.content:
                        out["content"] += choice.delta.content
                        out["chunks"] += 1
                if args.disconnect_after and out["chunks"] >= args.disconnect_after:
                    stream.close()
                    out["disconnected"] = True
                    break
        else:
            answer = c.chat.completions.create(**kwargs)
            out["content"] = answer.choices[0].message.content
            out["usage"] = answer.usage.model_dump() if answer.usage else None
    except openai.APIError as exc:
        out["error"] = error_of(exc)
    return out


def raw_stream(args):
    """The stream's bytes as the wire has them (to see the cost comments an SDK skips); the body
    is `--raw-body` as written when given (to send what an SDK would not)."""
    body = args.raw_body or json.dumps({"model": args.model, "messages": [{"role": "user", "content": args.content}], "stream": True})
    url = urlsplit(args.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    connection.request("POST", url.path + "/chat/completions", body=body,
                       headers={"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"})
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    return {"status": response.status, "text": text}


def abandon(args):
    """Sends a streamed chat and closes the connection before the answer's head comes (the
    upstream delays it with first_ms)."""
    body = json.dumps({"model": args.model, "messages": [{"role": "user", "content": args.content}], "stream": True, "max_tokens": 10})
    url = urlsplit(args.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    connection.request("POST", url.path + "/chat/completions", body=body,
                       headers={"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"})
    time.sleep(args.abandon_after)
    # A reset, not a close: the proxy's side of the connection is gone at once.
    connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()
    return {"abandoned": True}


def completion(args):
    c = client(args)
    out = {"text": "", "chunks": 0}
    try:
        if args.stream:
            for chunk in c.completions.create(model=args.model, prompt=args.content, max_tokens=args.max_tokens or 16, stream=True):
                for choice in chunk.choices:
                    if choice.text:
                        out["text"] += choice.text
                        out["chunks"] += 1
        else:
            answer = c.completions.create(model=args.model, prompt=args.content, max_tokens=args.max_tokens or 16)
            out["text"] = answer.choices[0].text
            out["usage"] = answer.usage.model_dump() if answer.usage else None
    except openai.APIError as exc:
        out["error"] = error_of(exc)
    return out


def embedding(args):
    c = client(args)
    try:
        answer = c.embeddings.create(model=args.model, input=[args.content, args.content])
        return {"count": len(answer.data), "dimensions": len(answer.data[0].embedding), "usage": answer.usage.model_dump()}
    except openai.APIError as exc:
        return {"error": error_of(exc)}


def models(args):
    c = client(args)
    try:
        return {"ids": [m.id for m in c.models.list()], "one": c.models.retrieve("m").id}
    except openai.APIError as exc:
        return {"error": error_of(exc)}


async def concurrent(args):
    """Many streams at once on one key: how each ended."""
    c = openai.AsyncOpenAI(base_url=args.base_url, api_key=args.key, max_retries=0, timeout=60)

    async def one(index):
        chunks = 0
        try:
            stream = await c.chat.completions.create(model=args.model, stream=True,
                                                     messages=[{"role": "user", "content": args.content}])
            async for chunk in stream:
                chunks += sum(1 for choice in chunk.choices if choice.delta.content)
            return {"outcome": "completed", "chunks": chunks}
        except openai.APIError as exc:
            return {"outcome": "refused" if chunks == 0 and isinstance(exc, openai.APIStatusError) else "cut",
                    "chunks": chunks, "error": error_of(exc)}

    results = await asyncio.gather(*(one(i) for i in range(args.streams)))
    await c.close()
    summary = {}
    for result in results:
        summary[result["outcome"]] = summary.get(result["outcome"], 0) + 1
    return {"summary": summary, "results": results}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("scenario", choices=["chat", "raw-stream", "abandon", "completion", "embedding", "models", "concurrent"])
    parser.add_argument("--model", default="m")
    parser.add_argument("--content", default="hello")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--include-usage", action="store_true")
    parser.add_argument("--raw-body")
    parser.add_argument("--abandon-after", type=float, default=0.5)
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--disconnect-after", type=int)
    parser.add_argument("--streams", type=int, default=50)
    args = parser.parse_args()
    if args.scenario == "concurrent":
        out = asyncio.run(concurrent(args))
    else:
        out = {"chat": chat, "raw-stream": raw_stream, "abandon": abandon, "completion": completion, "embedding": embedding, "models": models}[args.scenario](args)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
