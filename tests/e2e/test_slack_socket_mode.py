"""Socket Mode: `serve` with SLACK_APP_TOKEN connects to a local fake Socket Mode server
(obtained through apps.connections.open on the fake Web API), acks an envelope and answers
the slash command."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.server import ServerConnection, serve

from tests.conftest import start_sim
from tests.e2e.test_slack_served import free_port
from tests.fakes.slack_api import TOKEN, FakeSlack
from tests.support.processes import diagnosable, stop


class FakeSocketMode:
    """Accepts the bot's WebSocket, says hello, lets the test push envelopes, keeps acks."""

    def __init__(self) -> None:
        self.outbox: queue.Queue[dict] = queue.Queue()
        self.acks: queue.Queue[dict] = queue.Queue()
        self.connected = threading.Event()
        self.server = serve(self._handle, "127.0.0.1", 0)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/link"

    def _handle(self, ws: ServerConnection) -> None:
        ws.send(json.dumps({"type": "hello", "num_connections": 1,
                            "connection_info": {"app_id": "A1"}}))
        self.connected.set()
        while True:
            try:
                envelope = self.outbox.get(timeout=0.2)
                ws.send(json.dumps(envelope))
            except queue.Empty:
                pass
            try:
                message = ws.recv(timeout=0.05)
            except TimeoutError:
                continue
            except Exception:
                return
            self.acks.put(json.loads(message))

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def socket_bot(tmp_path: Path) -> Iterator[tuple[FakeSlack, FakeSocketMode]]:
    sim = start_sim(tmp_path)
    slack = FakeSlack().start()
    sockets = FakeSocketMode()
    slack.socket_url = sockets.url
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PATROL_"))}
    env.update({"SLACK_BOT_TOKEN": TOKEN, "SLACK_APP_TOKEN": "xapp-1-A1-test",
                "SLACK_API_URL": slack.base_url, "PORT": str(free_port()),
                "KUBECONFIG": str(sim.kubeconfig), "DATABASE_URL": f"sqlite:///{tmp_path}/b.db"})
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=diagnosable(env),
                            text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        if not sockets.connected.wait(60):
            proc.kill()
            pytest.fail(f"the bot never opened the socket: {proc.communicate()[0]}")
        yield slack, sockets
    finally:
        out = stop(proc, 20)
        sockets.stop()
        slack.stop()
        sim.server.stop()
        assert "Traceback" not in out, out


def test_slash_command_over_socket_mode(socket_bot: tuple[FakeSlack, FakeSocketMode]) -> None:
    slack, sockets = socket_bot
    assert slack.calls_to("apps.connections.open")
    sockets.outbox.put({
        "envelope_id": "env-1", "type": "slash_commands", "accepts_response_payload": True,
        "payload": {"token": "legacy", "team_id": "T0001", "channel_id": "CSOCK",
                    "user_id": "U123", "command": "/restarts",
                    "text": "qld2-production pod1-deployment", "trigger_id": "1.2",
                    "response_url": slack.response_url("socket"), "api_app_id": "A1"}})
    ack = sockets.acks.get(timeout=10)
    assert ack["envelope_id"] == "env-1"
    parent = slack.wait_for(lambda: next((m for m in slack.messages("CSOCK")
                                          if not m.get("thread_ts")), None))
    reply = slack.wait_for(lambda: next(iter(slack.replies("CSOCK", parent["ts"])), None))
    assert "Go panic: runtime error" in slack.text_of(reply)
