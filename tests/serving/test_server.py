"""`generate serve` as clients see it: the API, streams, errors, tokens, disconnects, and a stop under load."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
from click.testing import CliRunner

from generate.cli import cli

from ..helpers import one_line_error

pytest.importorskip("onnxruntime")
TOKEN = "a-test-token-of-some-length"


def start_server(*args: str, env: dict | None = None):
    """`generate serve ARGS --port 0` in a process of its own; returns it and its address once it listens."""
    child = subprocess.Popen([sys.executable, "-m", "generate", "serve", *args, "--port", "0"], stderr=subprocess.PIPE,
                             text=True, env={**os.environ, **(env or {})})
    line = child.stderr.readline()
    found = re.search(r"at (http://\S+) \(the studio at \1/,", line)  # the startup line names the studio page
    assert found, line + child.stderr.read()
    return child, found.group(1)


@pytest.fixture(scope="module")
def server(bundle, trained_run):
    child, address = start_server(str(bundle), str(trained_run), "--token", TOKEN, "--grace", "3")
    yield address
    child.terminate()
    child.wait(timeout=30)


def client(address: str, token: str | None = TOKEN) -> httpx.Client:
    return httpx.Client(base_url=address, timeout=60, headers={"Authorization": f"Bearer {token}"} if token else {})


def events(response) -> list[dict]:
    return [json.loads(line[len("data: "):]) for line in response.iter_lines() if line.startswith("data: ")]


def test_models_health_metrics_and_the_openapi_description(server):
    with client(server) as http:
        models = http.get("/v1/models").json()["models"]
        assert [m["name"] for m in models] == ["verse", "run"] and models[0]["kind"] == "text" and models[0]["bundle"]
        assert not models[0]["chinese_verse"] and models[0]["writes"]  # the studio offers an English model no Form
        assert http.get("/openapi.json").json()["paths"]["/v1/samples"]["post"]
        assert 'generate_requests_total{route="models",outcome="ok"}' in http.get("/metrics").text
    with client(server, token=None) as anonymous:
        assert anonymous.get("/healthz").status_code == 200
        refused = anonymous.get("/v1/models")
        assert refused.status_code == 401 and refused.json()["error"]["field"] == "authorization"
    with client(server, token="a-wrong-token-of-the-same-len") as wrong:
        assert wrong.get("/metrics").status_code == 401


def test_samples_are_the_command_line_s_own_records_and_text(server, bundle, trained_run):
    body = {"prime": "Shall I", "length": 120, "seed": 7, "num_samples": 2, "temperature": 0.9}
    with client(server) as http:
        served = http.post("/v1/samples", json={"model": "verse", **body}).json()["samples"]
        from_run = http.post("/v1/samples", json={"model": "run", **body}).json()["samples"]  # a .keras run, in memory
    expected = CliRunner().invoke(cli, ["sample", str(bundle), "--prime", "Shall I", "-n", "120", "--seed", "7", "-N", "2",
                                        "-t", "0.9", "--json"])
    assert [r["text"] for r in served] == [json.loads(line)["text"] for line in expected.stdout.splitlines()]
    assert [r["text"] for r in from_run] == [r["text"] for r in served]  # the run's graph is its bundle's
    assert served[1]["seed"] == 7 and served[1]["sample_index"] == 1 and served[0]["checkpoint"].endswith("model.onnx")
    assert from_run[0]["run"] == "run" and from_run[0]["checkpoint"] == "best.keras"  # the model by name, no server path


def test_a_stream_sends_the_text_as_it_is_written_then_each_record(server):
    with client(server) as http, http.stream("POST", "/v1/samples", json={
            "model": "verse", "prime": "Thou", "length": 200, "seed": 3, "num_samples": 2, "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        received = events(response)
    texts = {0: "", 1: ""}
    for event in received[:-2]:
        texts[event["index"]] += event["text"]
    records = [e["record"] for e in received[-2:]]
    assert len(received) > 10 and [r["sample_index"] for r in records] == [0, 1]
    assert [texts[0], texts[1]] == [r["text"] for r in records] and texts[0].startswith("Thou")


@pytest.mark.parametrize("body, field, says", [
    ({"model": "/etc/passwd"}, "model", "expected one of the models this server runs"),
    ({"model": "../verse"}, "model", "expected one of"),
    ({}, "model", "expected one of"),
    ({"model": "verse", "top_k": -1}, "top_k", "expected an integer >= 0"),
    ({"model": "verse", "temperature": 99}, "temperature", "in [0, 3]"),
    ({"model": "verse", "temprature": 1}, "temprature", "did you mean 'temperature'?"),
    ({"model": "verse", "length": "long"}, "length", "expected int"),
    ({"model": "verse", "length": 10**9}, "length", "at most 10000 on this server"),
    ({"model": "verse", "num_samples": 500}, "num_samples", "at most 16 on this server"),
    ({"model": "verse", "prime": "x" * 5000}, "prime", "at most 4000 characters"),
    ({"model": "verse", "prime_file": "/etc/passwd"}, "prime_file", "reads no file"),
    ({"model": "verse", "prime": "§§"}, "prime", "not in"),
    ({"model": "verse", "key": "D"}, "key", "expected a music run"),
    ({"model": "verse", "stream": "yes"}, "stream", "expected true or false"),
    ({"model": "verse", "max_copy": 10, "form": "5x4"}, "form", ""),
])
def test_every_bad_field_is_a_400_naming_it(server, body, field, says):
    with client(server) as http:
        response = http.post("/v1/samples", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field and says in error["message"], error


def test_bodies_that_are_not_objects_or_too_large_are_refused(server):
    with client(server) as http:
        assert http.post("/v1/samples", content=b"{not json").status_code == 400
        assert http.post("/v1/samples", json=[1, 2]).json()["error"]["message"].startswith("expected a JSON object")
        assert http.post("/v1/samples", content=b" " * 70_000).status_code == 413


def test_a_client_that_leaves_mid_stream_frees_its_streams(server):
    with client(server) as http:
        with http.stream("POST", "/v1/samples", json={"model": "verse", "length": 10000, "seed": 1, "num_samples": 4,
                                                       "stream": True}) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and "text" in line:
                    break
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            metrics = http.get("/metrics").text
            if 'generate_active_streams{model="verse"} 0' in metrics:
                break
            time.sleep(0.05)
        assert 'generate_active_streams{model="verse"} 0' in metrics
        assert 'route="samples_stream",outcome="cancelled"' in metrics


def test_unsafe_binds_and_models_that_cannot_load_stop_the_start_in_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("GENERATE_SERVE_TOKEN", raising=False)
    runner = CliRunner()
    one_line_error(runner.invoke(cli, ["serve", "--host", "0.0.0.0"]), 2, "--host", "--token")
    one_line_error(runner.invoke(cli, ["serve", "--token", "short"]), 2, "--token", "at least 16")
    one_line_error(runner.invoke(cli, ["serve", str(tmp_path / "nothing"), "--port", "0"]), 2, "model", "nothing", "cannot be served")


def test_sigterm_under_load_ends_each_stream_with_a_final_event_and_exits_0(bundle):
    # Long enough that the tiny model cannot finish within the grace, however fast the machine.
    child, address = start_server(str(bundle), "--grace", "1", "--max-length", "200000")
    with client(address, token=None) as http, http.stream("POST", "/v1/samples", json={
            "model": "verse", "length": 200000, "seed": 2, "stream": True}) as response:
        lines = response.iter_lines()
        next(line for line in lines if line.startswith("data: "))
        child.send_signal(signal.SIGTERM)
        last = [json.loads(line[6:]) for line in lines if line.startswith("data: ")][-1]
    assert "stopping" in last["error"]["message"]
    assert child.wait(timeout=30) == 0


def test_co_writing_over_a_websocket_takes_undoes_redoes_edits_saves_and_replays(server, bundle, tmp_path):
    from websockets.sync.client import connect

    url = server.replace("http://", "ws://") + f"/v1/write?token={TOKEN}"
    with connect(url) as socket:
        def send(message: dict) -> dict:
            socket.send(json.dumps(message))
            return json.loads(socket.recv())

        assert send({"action": "take", "index": 0})["error"]["field"] == "action"  # nothing started yet
        assert send({"action": "start", "model": "/etc/passwd"})["error"]["field"] == "model"
        assert send({"action": "start", "model": "verse", "options": {"seed": 4, "candidats": 3}})["error"]["field"] == "candidats"
        state = send({"action": "start", "model": "verse", "options": {"seed": 4, "candidates": 3, "text": "Shall I"}})
        assert state["type"] == "state" and len(state["candidates"]) == 3 and state["text"] == "Shall I"
        taken = send({"action": "take", "index": 1})
        assert taken["text"] == "Shall I" + state["candidates"][1] and taken["can_undo"]
        assert send({"action": "take", "index": 7})["error"]["field"] == "index"
        back = send({"action": "undo"})
        assert back["text"] == "Shall I" and back["candidates"] == state["candidates"] and back["can_redo"]
        assert send({"action": "redo"})["text"] == taken["text"]
        assert send({"action": "edit", "text": "Thou §"})["error"]["field"] == "text"
        edited = send({"action": "edit", "text": "Thou art"})
        assert edited["text"] == "Thou art" and len(edited["candidates"]) == 3
        assert send({"action": "temperature", "value": 1.3})["temperature"] == 1.3
        final = send({"action": "take", "index": 0})
        saved = send({"action": "save"})
        assert saved["type"] == "saved" and saved["record"]["session"]["text"] == final["text"]
    assert saved["record"]["run"] == "verse" and "/" not in saved["record"]["checkpoint"]  # no server path
    sidecar = tmp_path / "session.txt.json"
    sidecar.write_text(json.dumps({**saved["record"], "run": str(bundle)}))  # replayed with the client's copy of the model
    replayed = CliRunner().invoke(cli, ["write", "--replay", str(sidecar)])
    assert replayed.exit_code == 0, replayed.stderr
    assert replayed.stdout.rstrip("\n") == final["text"].rstrip("\n")


def test_a_music_sample_renders_by_its_id_and_a_text_sample_does_not(server):
    import shutil

    child, address = start_server("folk")
    try:
        with client(address, token=None) as http:
            record = http.post("/v1/samples", json={"model": "folk", "seed": 3}).json()["samples"][0]
            assert re.fullmatch(r"[0-9a-f]{16}", record["id"]) and record["text"].startswith("M:")
            midi = http.get(f"/v1/samples/{record['id']}.mid")
            assert midi.status_code == 200 and midi.content[:4] == b"MThd" and midi.headers["content-type"] == "audio/midi"
            assert http.get(f"/v1/samples/{record['id']}.png").content[:8] == b"\x89PNG\r\n\x1a\n"
            assert http.get(f"/v1/samples/{record['id']}.json").json()["text"] == record["text"]
            assert http.get(f"/v1/samples/{record['id']}.txt").text == record["text"]
            wav = http.get(f"/v1/samples/{record['id']}.wav")
            if shutil.which("fluidsynth"):
                assert wav.status_code == 200 and wav.content[:4] == b"RIFF"
            else:
                assert wav.status_code == 501 and "fluidsynth" in wav.json()["error"]["message"]
            assert http.get(f"/v1/samples/{record['id']}.flac").json()["error"]["field"] == "format"
            assert http.get("/v1/samples/0123456789abcdef.mid").status_code == 404
    finally:
        child.terminate()
        child.wait(timeout=30)
    with client(server) as http:
        text = http.post("/v1/samples", json={"model": "verse", "seed": 1, "length": 20}).json()["samples"][0]
        refused = http.get(f"/v1/samples/{text['id']}.mid")
        assert refused.status_code == 400 and "txt or json" in refused.json()["error"]["message"]


def test_a_full_queue_is_a_429_with_retry_after_and_cors_is_off_unless_asked(bundle):
    import threading

    child, address = start_server(str(bundle), "--max-streams", "1", "--max-queued", "1", "--cors-origin",
                                  "http://studio.example")
    try:
        long = {"model": "verse", "length": 10000, "seed": 1}
        holders = [threading.Thread(target=lambda: httpx.post(f"{address}/v1/samples", json=long, timeout=60)) for _ in range(2)]
        holders[0].start()
        with client(address, token=None) as http:
            while 'generate_active_streams{model="verse"} 1' not in http.get("/metrics").text:
                time.sleep(0.02)
            holders[1].start()
            while 'generate_queue_depth{model="verse"} 1' not in http.get("/metrics").text:
                time.sleep(0.02)
            refused = http.post("/v1/samples", json=long)
            assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
            assert "waiting already" in refused.json()["error"]["message"]
            allowed = http.get("/v1/models", headers={"Origin": "http://studio.example"})
            assert allowed.headers["access-control-allow-origin"] == "http://studio.example"
            other = http.get("/v1/models", headers={"Origin": "http://elsewhere.example"})
            assert "access-control-allow-origin" not in other.headers
    finally:
        child.terminate()
        child.wait(timeout=30)
        for holder in holders:
            holder.join(timeout=30)


def test_beam_search_and_filters_run_through_the_server(server):
    with client(server) as http:
        beams = http.post("/v1/samples", json={"model": "verse", "prime": "Shall", "beam": 3, "num_samples": 2,
                                               "length": 30}).json()["samples"]
        assert len(beams) == 2 and beams[0]["beam_score"] >= beams[1]["beam_score"]
        with http.stream("POST", "/v1/samples", json={"model": "verse", "prime": "Shall", "min_length": 5, "seed": 2,
                                                      "length": 40, "stream": True}) as response:
            received = events(response)
        assert [set(e) for e in received] == [{"index", "text"}, {"index", "record"}]  # whole, once the filter passed it
        assert received[0]["text"] == received[1]["record"]["text"]


def test_the_websocket_needs_the_token_too(server):
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    try:
        with connect(server.replace("http://", "ws://") + "/v1/write") as socket:
            socket.send(json.dumps({"action": "start", "model": "verse"}))
            socket.recv()
        raise AssertionError("a token-less socket was served")
    except (InvalidStatus, ConnectionClosed):
        pass
