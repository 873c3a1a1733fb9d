"""`generate serve` against requests an attacker or a careless client sends, and against the OpenAI client.

One server without a token (the local-development case: Host and Origin
checks apply), small bounds, and a tiny bundle; a second for SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from generate.cli import cli

from .test_server import start_server

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def local(bundle):
    child, address = start_server(str(bundle), "--max-length", "3000", "--request-seconds", "20", "--grace", "2",
                                  env={"GENERATE_SERVE_HEADER_SECONDS": "1.5"})
    threading.Thread(target=child.stderr.read, daemon=True).start()  # the access log, drained
    yield address, child
    child.terminate()
    child.wait(timeout=30)


def threads_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def test_a_short_request_is_answered_while_a_beam_and_an_abandoned_beam_run(local):
    address, _ = local
    abandoned = threading.Thread(target=lambda: _abandon(address, {"model": "verse", "length": 3000, "beam": 64}, 1.0))
    abandoned.start()
    time.sleep(0.3)
    with httpx.Client(base_url=address, timeout=60) as http:
        long_beam = threading.Thread(target=http.post, args=("/v1/samples",), kwargs={"json": {
            "model": "verse", "length": 2000, "beam": 48}})
        long_beam.start()
        time.sleep(0.3)
        for seed in range(3):
            started = time.monotonic()
            answer = http.post("/v1/samples", json={"model": "verse", "length": 10, "seed": seed})
            # 2 s on an idle machine (benchmarks/serve_stall.py); here other modules share the two cores.
            assert answer.status_code == 200 and time.monotonic() - started < 3.0, (answer.text, time.monotonic() - started)
        abandoned.join()
        long_beam.join()
        # The abandoned beam was ended within a tick of its client leaving: nothing is left running.
        deadline = time.monotonic() + 5
        while 'generate_active_streams{model="verse"} 0' not in http.get("/metrics").text:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def _abandon(address: str, body: dict, after: float) -> None:
    try:
        httpx.post(address + "/v1/samples", json=body, timeout=after)
    except httpx.TimeoutException:
        pass


@pytest.mark.parametrize("body, field", [
    ({"model": "verse", "lines": 40}, "lines"),
    ({"model": "verse", "acrostic": "S" * 40}, "acrostic"),
    ({"model": "verse", "length": 3001}, "length"),
    ({"model": "verse", "beam": 65}, "beam"),
    ({"model": "verse", "renders": {"png": 1}}, "renders"),
    ({"model": "verse", "renders": ["png"]}, "renders"),
    ({"model": "verse", "length": 1.5}, "length"),
    ({"model": "verse", "seed": [1]}, "seed"),
    ({"model": "verse", "temperature": "hot"}, "temperature"),
])
def test_every_way_of_asking_is_bounded_and_typed(local, body, field):
    response = httpx.post(local[0] + "/v1/samples", json=body, timeout=30)
    assert response.status_code == 400 and response.json()["error"]["field"] == field, response.text


def test_malformed_bodies_are_json_errors_never_500s(local):
    address, _ = local
    with httpx.Client(base_url=address, timeout=30) as http:
        post = lambda raw: http.post("/v1/samples", content=raw, headers={"Content-Type": "application/json"})  # noqa: E731
        deep = post(b"[" * 30000 + b"]" * 30000)
        assert deep.status_code in (400, 413) and "error" in deep.json()
        assert post(b'{"model": "verse", "length": NaN}').status_code == 400
        surrogate = post(b'{"model": "verse", "prime": "a\\udc00", "length": 5}')
        assert surrogate.status_code == 400 and surrogate.json()["error"]["field"] == "prime"
        stop = post(b'{"model": "verse", "stop": ["\\ud800"], "length": 5, "stream": true}')
        assert stop.status_code == 400 and stop.json()["error"]["field"] == "stop"
        oov = http.post("/v1/samples", json={"model": "verse", "prime": "\u00a7", "length": 5}).json()["error"]
        assert oov["field"] == "prime" and "--" not in oov["message"] and '"oov"' in oov["message"]
        for method, path, status in (("GET", "/nowhere", 404), ("GET", "/v1/samples", 405), ("DELETE", "/v1/models", 405)):
            answer = http.request(method, path)
            assert answer.status_code == status and answer.json()["error"]["message"], answer.text
        answered = http.post("/v1/samples", json={"model": "verse", "length": 5, "seed": 1})
        assert answered.headers["x-request-id"] != http.get("/livez").headers["x-request-id"]  # one id per request
        record = answered.json()["samples"][0]
        assert record["run"] == "verse" and "/" not in record["checkpoint"] and "/" not in record["command"].split()[2]
        assert http.get("/livez").status_code == 200 and http.get("/readyz").json()["status"] == "ready"


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(local):
    host, port = local[0].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(b"POST /v1/samples HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 50000000\r\n\r\n")
        answer = b""
        while b"expected at most" not in answer and (chunk := raw.recv(4096)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413") and b"expected at most" in answer


def test_a_client_that_trickles_its_headers_is_closed(local):
    host, port = local[0].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(b"POST /v1/samples HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
        started = time.monotonic()
        assert raw.recv(4096) == b""  # closed by the server
    assert time.monotonic() - started < 5
    with httpx.Client(base_url=local[0], timeout=30) as http:  # a keep-alive client that asks in time is served
        for _ in range(2):
            assert http.post("/v1/samples", json={"model": "verse", "prime": "Shall", "length": 3}).status_code == 200
            time.sleep(1.0)


def test_without_a_token_only_this_machine_s_pages_are_answered(local):
    address, _ = local
    port = address.rsplit(":", 1)[1]
    body = {"model": "verse", "length": 5}
    with httpx.Client(base_url=address, timeout=30) as http:
        assert http.post("/v1/samples", json=body, headers={"Host": "evil.example"}).status_code == 403
        crafted = http.post("/v1/samples", content=json.dumps(body), headers={"Origin": "http://evil.example",
                                                                              "Content-Type": "text/plain"})
        assert crafted.status_code == 403 and crafted.json()["error"]["field"] == "origin"
        assert http.post("/v1/samples", json=body, headers={"Origin": f"http://127.0.0.1:{port}"}).status_code == 200
        assert http.post("/v1/samples", json=body, headers={"Host": f"localhost:{port}"}).status_code == 200
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    with pytest.raises((InvalidStatus, ConnectionClosed)):
        with connect(address.replace("http://", "ws://") + "/v1/write", origin="http://evil.example") as ws:
            ws.send(json.dumps({"action": "start", "model": "verse"}))
            ws.recv()


def test_a_websocket_session_survives_every_bad_message_and_bounds_its_length(local):
    from websockets.sync.client import connect

    with connect(local[0].replace("http://", "ws://") + "/v1/write") as ws:
        def send(message) -> dict:
            ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))
            return json.loads(ws.recv())

        assert send({"action": "start", "model": "verse", "options": {"length": 1000000}})["error"]["field"] == "length"
        assert send({"action": "start", "model": "verse", "options": {"length": "x"}})["error"]["field"] == "length"
        assert send({"action": "start", "model": "verse", "options": {"seed": 3}})["type"] == "state"
        assert send(b"\x00\x01")["type"] == "error"
        assert send("[" * 30000 + "]" * 30000)["type"] == "error"
        assert send('{"action": "count", "value": Infinity}')["type"] == "error"
        assert send({"action": "count", "value": 1.5})["error"]["field"] == "value"
        assert send({"action": "temperature", "value": "warm"})["error"]["field"] == "value"
        assert send({"action": "take", "index": True})["error"]["field"] == "index"
        assert send({"action": "reroll"})["type"] == "state"  # the session went on


def test_a_thousand_requests_start_no_threads(local):
    address, child = local
    with httpx.Client(base_url=address, timeout=30) as http:
        body = {"model": "verse", "prime": "Shall", "length": 3}  # a prime: no warm-up, so a thousand take seconds
        for seed in range(50):
            http.post("/v1/samples", json={**body, "seed": seed})
        before = threads_of(child.pid)
        for seed in range(1000):
            assert http.post("/v1/samples", json={**body, "seed": seed}).status_code == 200
        assert threads_of(child.pid) - before <= 6, (before, threads_of(child.pid))


def test_sigterm_with_a_beam_in_flight_drains_with_503s_and_exits_within_the_grace(bundle):
    child, address = start_server(str(bundle), "--max-length", "5000", "--grace", "2")
    threading.Thread(target=child.stderr.read, daemon=True).start()
    with httpx.Client(base_url=address, timeout=30) as http:
        beam = threading.Thread(target=lambda: _abandon(address, {"model": "verse", "length": 5000, "beam": 64}, 30))
        beam.start()
        time.sleep(0.5)
        child.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        time.sleep(0.2)
        assert http.get("/readyz").status_code == 503
        refused = http.post("/v1/samples", json={"model": "verse", "length": 5})
        assert refused.status_code == 503 and "stopping" in refused.json()["error"]["message"]
        assert child.wait(timeout=10) == 0
        assert time.monotonic() - signalled < 2 + 1
        beam.join()


# ---------------------------------------------------------------- the OpenAI client, unchanged


@pytest.fixture(scope="module")
def openai_client(local):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=local[0] + "/v1", api_key="not-needed", max_retries=0)


def cli_text(bundle, *args) -> str:
    result = CliRunner().invoke(cli, ["-q", "sample", str(bundle), *args])
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_the_openai_client_lists_models_and_completes_as_the_command_line_samples(openai_client, bundle):
    assert [m.id for m in openai_client.models.list()] == ["verse"]
    completion = openai_client.completions.create(model="verse", prompt="Shall I", max_tokens=40, temperature=0.8, seed=5)
    expected = cli_text(bundle, "--prime", "Shall I", "--length", "40", "-t", "0.8", "--seed", "5")
    assert "Shall I" + completion.choices[0].text == expected.rstrip("\n") or "Shall I" + completion.choices[0].text == expected
    assert completion.usage.completion_tokens == len(completion.choices[0].text) and completion.usage.prompt_tokens == 7
    many = openai_client.completions.create(model="verse", prompt=["Shall I", "Thou"], max_tokens=20, n=2, seed=5)
    assert [c.index for c in many.choices] == [0, 1, 2, 3]
    alone = openai_client.completions.create(model="verse", prompt="Thou", max_tokens=20, n=2, seed=5)
    assert [c.text for c in many.choices[2:]] == [c.text for c in alone.choices]  # batched or alone, the same
    streamed = openai_client.completions.create(model="verse", prompt="Shall I", max_tokens=40, temperature=0.8, seed=5,
                                                stream=True, stream_options={"include_usage": True})
    chunks = list(streamed)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == completion.choices[0].text
    assert chunks[-1].usage.completion_tokens == len(completion.choices[0].text)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")


def test_stop_strings_never_leak_even_when_streamed(openai_client):
    plain = openai_client.completions.create(model="verse", prompt="Shall I", max_tokens=200, seed=2, temperature=1.0)
    stop = next(plain.choices[0].text[i:i + 2] for i in range(5, 150) if plain.choices[0].text[i:i + 2].strip())
    stopped = openai_client.completions.create(model="verse", prompt="Shall I", max_tokens=200, seed=2, stop=[stop])
    assert stop not in stopped.choices[0].text and stopped.choices[0].finish_reason == "stop"
    streamed = openai_client.completions.create(model="verse", prompt="Shall I", max_tokens=200, seed=2, stop=[stop], stream=True)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == stopped.choices[0].text


def test_echo_logprobs_score_the_prompt_as_generate_score_does(openai_client, bundle, tmp_path):
    text = "Shall I compare thee to a summer's day?"
    scored = openai_client.completions.create(model="verse", prompt=text, max_tokens=0, echo=True, logprobs=3)
    logprobs = scored.choices[0].logprobs
    assert logprobs.tokens == list(text) and logprobs.token_logprobs[0] is None and len(logprobs.top_logprobs[1]) == 3
    path = tmp_path / "line.txt"
    path.write_text(text, encoding="utf-8")
    line = CliRunner().invoke(cli, ["score", str(bundle), str(path), "--json"]).stdout
    nats = json.loads(line.splitlines()[0])["nats"] if line.lstrip().startswith("{") else float(line.split()[1])
    mean = -sum(logprobs.token_logprobs[1:]) / (len(text) - 1)
    assert abs(mean - nats) < 1e-4, (mean, nats)


def test_openai_errors_are_its_typed_exceptions_naming_the_parameter(openai_client):
    import openai

    with pytest.raises(openai.NotFoundError):
        openai_client.completions.create(model="gpt-5", prompt="x", max_tokens=5)
    for kwargs, param in (({"max_tokens": 100000}, "max_tokens"), ({"n": 1000}, "n"), ({"logprobs": 9}, "logprobs"),
                          ({"stop": ["a", "b", "c", "d", "e"]}, "stop"), ({"extra_body": {"form": 7}}, "form")):
        with pytest.raises(openai.BadRequestError) as raised:
            openai_client.completions.create(model="verse", prompt="x", **{"max_tokens": 5, **kwargs})
        assert raised.value.body["param"] == param, (kwargs, raised.value.body)


def test_a_server_with_a_token_needs_it_for_completions(bundle):
    openai = pytest.importorskip("openai")
    token = "a-token-for-completions-0123"
    child, address = start_server(str(bundle), "--token", token, env={**os.environ, "GENERATE_SERVE_TOKEN": ""})
    try:
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=address + "/v1", api_key="wrong-key", max_retries=0).completions.create(
                model="verse", prompt="x", max_tokens=3)
        good = openai.OpenAI(base_url=address + "/v1", api_key=token, max_retries=0)
        assert good.completions.create(model="verse", prompt="Thou", max_tokens=3, seed=1).choices[0].text
    finally:
        child.terminate()
        child.wait(timeout=30)
