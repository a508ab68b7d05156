#!/usr/bin/python3
"""A protocol v1 client for gateway-strategy in Python, and a scenario that plays it against a real gateway.

The first half, GatewayClient, is the part to reuse: connect and wait for `hello`, send envelopes with ids and wait
for the reply that carries `replyTo`, track the highest `seq` received, keep the newest session token and the
connection's expiry, refresh the token in band, resume. The second half is the scenario: two users in one group, a
publish with echo, a heartbeat, a token refresh (and one refused), a dropped connection that resumes with nothing
lost, and a close without status code. Each step prints one line; the exit code is 0 when every
step held, 1 when one failed (the last line names it).

Needs Python 3.11 and websockets 10.4 (Debian: apt-get install python3-websockets), nothing else:

    /usr/bin/python3 docs/examples/python_client.py --url ws://127.0.0.1:4100/rt \\
        --token "$(yarn -s token --sub alice --groups group-1)" \\
        --watcher-token "$(yarn -s token --sub bob --groups group-1)"
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import websockets
from websockets.frames import Close

Envelope = dict[str, Any]

# How long any single wait lasts before the step fails.
WAIT_S = 3.0


class ProtocolFailure(Exception):
    """The gateway did not answer as protocol v1 says: a missing reply, an `error`, or a closed connection."""


# --- the reusable client -----------------------------------------------------------------------------------------


class GatewayClient:
    """One user's session with the gateway, across as many connections as it takes.

    Received envelopes wait in an inbox until `next()` or `request()` takes them, so nothing is missed between two
    awaits. The session state (`session_id`, the newest `session_token`, `last_seq`) and the inbox outlive a
    connection, which is what `resume()` needs.
    """

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.user_id: str | None = None
        self.connection_id: str | None = None
        self.session_id: str | None = None
        self.session_token: str | None = None
        # When the connection expires (`ready.expiresAt`, `refreshed.expiresAt`: ms since the epoch, gateway clock).
        # Call refresh() with a fresh token well before it, or the gateway closes with 4004 (then resume()).
        self.expires_at: int | None = None
        # The highest `seq` received in this session. Everything up to it is in the inbox or already taken, so it is
        # the `lastSeq` to resume with.
        self.last_seq = 0
        self.hello: Envelope | None = None
        self._ws: websockets.WebSocketClientProtocol | None = None
        self._reader: asyncio.Task[None] | None = None
        self._inbox: list[Envelope] = []
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)

    # connecting and identifying

    async def connect(self) -> Envelope:
        """Opens a connection and returns its `hello` (taken from the inbox)."""
        # ping_interval=None: the gateway counts application heartbeats, not WebSocket pings (it still pings us when
        # we are quiet, and websockets answers those by itself).
        self._ws = await websockets.connect(self.url, open_timeout=WAIT_S, ping_interval=None)
        self._reader = asyncio.create_task(self._read(self._ws))
        self.hello = await self.next("hello")
        return self.hello

    async def identify(self, groups: list[str] | None = None, resume: bool = False) -> Envelope:
        """Sends `identify` and returns `ready`; with `resume`, asks for the current session back."""
        data: dict[str, Any] = {"token": self.token}
        if groups:
            data["groups"] = groups
        if resume:
            data["resume"] = {"sessionId": self.session_id, "sessionToken": self.session_token, "lastSeq": self.last_seq}
        return await self.request("identify", data, expect="ready")

    async def resume(self) -> Envelope:
        """After a drop: a new connection that resumes the session. Check `ready.data.resumed`: when false, the
        session is a new one (numbered from 1 again) and the app should refetch its state."""
        await self.connect()
        return await self.identify(resume=True)

    # sending and receiving

    async def send(self, type_: str, data: dict[str, Any] | None = None, id_: str | None = None) -> None:
        envelope: Envelope = {"type": type_}
        if id_ is not None:
            envelope["id"] = id_
        if data is not None:
            envelope["data"] = data
        await self._connection().send(json.dumps(envelope))

    async def request(self, type_: str, data: dict[str, Any] | None = None, expect: str | None = None) -> Envelope:
        """Sends an envelope with a fresh `id` and returns its one reply (the envelope whose `replyTo` is that id).
        An `error` reply, or a reply of another type than `expect`, raises ProtocolFailure."""
        id_ = str(next(self._ids))
        await self.send(type_, data, id_)
        reply = await self.next(lambda env: env.get("replyTo") == id_, f"the reply to {type_}")
        if reply["type"] == "error":
            raise ProtocolFailure(f"{type_} was refused: {reply['data']['code']} ({reply['data']['message']})")
        if expect is not None and reply["type"] != expect:
            raise ProtocolFailure(f"{type_} was answered {reply['type']}, not {expect}")
        return reply

    async def refresh(self, token: str) -> Envelope:
        """Sends a fresh token for the same user (`refresh`) and returns `refreshed`; the connection's expiry moves to
        the new token's. Keep the token for the next resume. A refused token raises ProtocolFailure (AUTH_FAILED),
        and the connection stays open with its current expiry."""
        refreshed = await self.request("refresh", {"token": token}, expect="refreshed")
        self.token = token
        return refreshed

    async def heartbeat(self) -> Envelope:
        """Sends `heartbeat` and returns `heartbeat_ack` (the client keeps its fresh session token). A long-lived
        client sends one every `hello.data.heartbeatIntervalMs`."""
        return await self.request("heartbeat", expect="heartbeat_ack")

    async def next(self, match: str | Callable[[Envelope], bool], what: str | None = None, timeout: float = WAIT_S) -> Envelope:
        """Takes the first envelope of type `match` (or for which `match` is true) from the inbox, waiting up to
        `timeout` seconds for it to arrive."""
        test = (lambda env: env["type"] == match) if isinstance(match, str) else match
        what = what or (f"a {match} envelope" if isinstance(match, str) else "the awaited envelope")

        async def take() -> Envelope:
            async with self._changed:
                while True:
                    for i, env in enumerate(self._inbox):
                        if test(env):
                            return self._inbox.pop(i)
                    ws = self._connection()
                    if ws.closed:
                        raise ProtocolFailure(f"the connection closed (code {ws.close_code}) before {what} arrived")
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(take(), timeout)
        except asyncio.TimeoutError:
            raise ProtocolFailure(f"no {what} within {timeout:g} s") from None

    def take_received(self, match: Callable[[Envelope], bool]) -> list[Envelope]:
        """Takes every envelope received so far for which `match` is true, oldest first, without waiting."""
        taken = [env for env in self._inbox if match(env)]
        self._inbox = [env for env in self._inbox if not match(env)]
        return taken

    @property
    def is_open(self) -> bool:
        return self._ws is not None and not self._ws.closed

    # ending a connection

    async def close(self, code: int | None = 1000) -> None:
        """Closes the connection with a closing handshake. With code 1000 the gateway ends the session at once (its
        user goes DOWN where this was their last session); code=None sends no status code at all, as a browser's
        plain `socket.close()` does."""
        ws = self._connection()
        if code is not None:
            await ws.close(code)
        else:
            # websockets 10.4's close() always writes a status code, and refuses 1005: "no status code" is reserved for
            # reporting, never sent. Yet a close frame may have an empty payload (RFC 6455, 5.5.1), and that is what a
            # browser sends. write_close_frame() is how close() itself writes the frame: it sends at most one and moves
            # the connection to CLOSING, so the gateway's answering close frame completes the handshake as usual; an
            # explicit payload of b"" leaves the status code out. Close(1005, "") is what this side records as sent.
            await ws.write_close_frame(Close(1005, ""), b"")
        await asyncio.wait_for(ws.wait_closed(), WAIT_S)
        await self._stopped_reading()

    async def abort(self) -> None:
        """Drops the TCP connection without a close frame, like a phone losing its network. The gateway orphans the
        session for a while (its user stays UP) so that `resume()` can pick it up."""
        self._connection().transport.abort()
        await self._stopped_reading()

    # internals

    def _connection(self) -> websockets.WebSocketClientProtocol:
        if self._ws is None:
            raise ProtocolFailure("not connected")
        return self._ws

    async def _stopped_reading(self) -> None:
        if self._reader is not None:
            await self._reader

    async def _read(self, ws: websockets.WebSocketClientProtocol) -> None:
        try:
            async for message in ws:
                envelope = json.loads(message)
                self._note(envelope)
                async with self._changed:
                    self._inbox.append(envelope)
                    self._changed.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            # Wake the waiters so that they see the connection closed instead of waiting out their timeout.
            async with self._changed:
                self._changed.notify_all()

    def _note(self, envelope: Envelope) -> None:
        """Session bookkeeping, in arrival order: the session's identity, its newest token, the highest seq."""
        data = envelope.get("data") or {}
        if envelope["type"] == "ready":
            self.user_id = data["userId"]
            self.connection_id = data["connectionId"]
            self.session_id = data["sessionId"]
            if not data["resumed"]:
                self.last_seq = 0  # a new session is numbered from 1
        if envelope["type"] in ("ready", "refreshed") and "expiresAt" in data:
            self.expires_at = data["expiresAt"]
        if envelope["type"] in ("ready", "heartbeat_ack") and "sessionToken" in data:
            self.session_token = data["sessionToken"]
        seq = envelope.get("seq")
        if isinstance(seq, int) and seq > self.last_seq:
            self.last_seq = seq


# --- the scenario ------------------------------------------------------------------------------------------------


class Scenario:
    """The user (`--token`) and a watcher (`--watcher-token`) in one group; each step returns its transcript line or
    raises ProtocolFailure."""

    def __init__(self, url: str, token: str, watcher_token: str, group: str) -> None:
        self.group = group
        self.user = GatewayClient(url, token)
        self.watcher = GatewayClient(url, watcher_token)

    def steps(self) -> list[tuple[str, Callable[[], Awaitable[str]]]]:
        return [
            ("watcher joins", self.watcher_joins),
            ("user subscribes", self.user_subscribes),
            ("data_update with echo", self.publish_with_echo),
            ("heartbeat", self.heartbeat),
            ("presence status", self.presence_status),
            ("token refresh", self.refresh),
            ("abrupt drop and resume", self.drop_and_resume),
            ("close without status code", self.close_without_status),
        ]

    def presence_of(self, user_id: str | None, status: str | None = None) -> Callable[[Envelope], bool]:
        return lambda env: (
            env["type"] == "presence_update"
            and env["data"]["group"] == self.group
            and env["data"]["userId"] == user_id
            and (status is None or env["data"]["status"] == status)
        )

    async def watcher_joins(self) -> str:
        await self.watcher.connect()
        ready = await self.watcher.identify(groups=[self.group])
        groups = [g["group"] for g in ready["data"]["groups"]]
        check(groups == [self.group], f"ready lists groups {groups}, not [{self.group}] (denied: {ready['data']['denied']})")
        return f"watcher {self.watcher.user_id}: hello, ready in {self.group}"

    async def user_subscribes(self) -> str:
        await self.user.connect()
        ready = await self.user.identify()
        check(ready["data"]["groups"] == [], f"ready lists groups although none were asked for: {ready['data']['groups']}")
        subscribed = await self.user.request("subscribe", {"group": self.group}, expect="subscribed")
        members = [m["userId"] for m in subscribed["data"]["members"]]
        check(members == [self.watcher.user_id, self.user.user_id], f"subscribed lists members {members}")
        await self.watcher.next(self.presence_of(self.user.user_id, "UP"), f"presence_update UP for {self.user.user_id}")
        return f"user {self.user.user_id}: hello, ready, subscribed with members {', '.join(members)}; watcher saw {self.user.user_id} UP"

    async def publish_with_echo(self) -> str:
        payload = {"text": "hello from python"}
        id_ = "publish-1"
        await self.user.send("data_update", {"group": self.group, "payload": payload, "echo": True}, id_)
        own = await self.user.next(lambda env: env["type"] == "data_update" and env["data"]["payload"] == payload, "the echo")
        me = {"userId": self.user.user_id, "connectionId": self.user.connection_id}
        check(own["data"]["from"] == me, f"the echo is from {own['data']['from']}")
        check(isinstance(own.get("seq"), int), "the echoed data_update has no seq")
        ack = await self.user.next(lambda env: env.get("replyTo") == id_, "the ack")
        check(ack["type"] == "ack", f"the publish was answered {ack['type']}: {ack['data']}")
        seen = await self.watcher.next("data_update", "the data_update at the watcher")
        check(seen["data"]["payload"] == payload and seen["data"]["from"] == me, f"the watcher received {seen['data']}")
        return f"data_update with echo: own copy (seq {own['seq']}) and ack; watcher received it"

    async def heartbeat(self) -> str:
        ack = await self.user.heartbeat()
        token = ack["data"].get("sessionToken")
        check(isinstance(token, str) and token != "", f"heartbeat_ack carries no sessionToken: {ack['data']}")
        check(self.user.session_token == token, "the client did not keep the newest session token")
        return "heartbeat: heartbeat_ack with a sessionToken, kept as the newest"

    async def presence_status(self) -> str:
        user = self.user.user_id
        # idle with a status line: the watcher sees one UPDATE carrying both.
        look = {"device": "python", "status": "reading the docs"}
        await self.user.request("presence", {"availability": "idle", "meta": look}, expect="ack")
        update = await self.watcher.next(self.presence_of(user, "UPDATE"), f"presence_update UPDATE for {user}")
        shown = (update["data"]["availability"], update["data"]["meta"])
        check(shown == ("idle", look), f"the UPDATE shows {shown}, not ('idle', {look})")
        # invisible: DOWN to the watcher, and gone from its member list, while the user stays connected.
        await self.user.request("presence", {"availability": "invisible"}, expect="ack")
        await self.watcher.next(self.presence_of(user, "DOWN"), f"presence_update DOWN for invisible {user}")
        members = await self.watcher.request("members", {"group": self.group}, expect="members")
        listed = [m["userId"] for m in members["data"]["members"]]
        check(user not in listed, f"the member list still shows invisible {user}: {listed}")
        # online again: UP, with the meta set before.
        await self.user.request("presence", {"availability": "online"}, expect="ack")
        up = await self.watcher.next(self.presence_of(user, "UP"), f"presence_update UP for visible {user}")
        check(up["data"]["availability"] == "online" and up["data"]["meta"] == look, f"the UP shows {up['data']}")
        return f"presence status: watcher saw {user} UPDATE to idle, DOWN while invisible (not listed), UP online again"

    async def refresh(self) -> str:
        expires_at = self.user.expires_at
        check(isinstance(expires_at, int), f"ready carries no expiresAt: {expires_at}")
        # The user's own token is still valid: refreshing with it keeps the expiry where it is.
        refreshed = await self.user.refresh(self.user.token)
        check(refreshed["data"]["expiresAt"] == expires_at, f"refreshed expiresAt {refreshed['data']['expiresAt']}, not {expires_at}")
        # Another user's token is refused, and the connection stays (the heartbeat answers).
        try:
            await self.user.refresh(self.watcher.token)
            raise ProtocolFailure("a refresh with another user's token was accepted")
        except ProtocolFailure as refused:
            check("AUTH_FAILED" in str(refused), f"a refresh with another user's token: {refused}")
        check(self.user.expires_at == expires_at, "a refused refresh changed the expiry")
        await self.user.heartbeat()
        return "token refresh: refreshed with the same expiresAt; another user's token refused with AUTH_FAILED, connection kept"

    async def drop_and_resume(self) -> str:
        session_id, last_seq = self.user.session_id, self.user.last_seq
        await self.user.abort()

        missed = [{"missed": n} for n in (1, 2, 3)]
        for payload in missed:
            await self.watcher.request("data_update", {"group": self.group, "payload": payload}, expect="ack")

        ready = await self.user.resume()
        check(ready["data"]["resumed"] is True, f"ready has resumed: {ready['data']['resumed']} (a new session)")
        check(ready["data"]["sessionId"] == session_id, f"resumed session {ready['data']['sessionId']}, not {session_id}")
        # The replay comes right after ready, before any later reply: a heartbeat's ack is the barrier behind which
        # every replayed envelope has arrived.
        await self.user.heartbeat()
        replayed = self.user.take_received(lambda env: env["type"] == "data_update")
        got = [(env["seq"], env["data"].get("payload")) for env in replayed]
        expected = [(last_seq + n, payload) for n, payload in enumerate(missed, 1)]
        check(got == expected, f"replayed (seq, payload) {got}, expected {expected}")
        # Whether the watcher saw the user flap is checked at the next step: presence goes out in batches (up to
        # GW_PRESENCE_BATCH_MS later), so only a later presence change of the same user is sure to come after it.
        replayed_seqs = f"{last_seq + 1}..{last_seq + len(missed)}"
        return f"abrupt drop: resumed {session_id} from lastSeq {last_seq}, replayed seq {replayed_seqs} in order"

    async def close_without_status(self) -> str:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self.user.close(code=None)
        user = self.user.user_id
        await self.watcher.next(self.presence_of(user, "DOWN"), f"presence_update DOWN for {user}", timeout=2.0)
        elapsed = (loop.time() - started) * 1000
        # Batches of one gateway go out in order: a flap at the resume would have arrived before this DOWN.
        flaps = self.watcher.take_received(self.presence_of(user))
        check(not flaps, f"the watcher saw {user} change before the close: {[env['data']['status'] for env in flaps]}")
        return f"close without status code: watcher saw {user} DOWN after {elapsed:.0f} ms, and no change of {user} since the UP"

    async def end(self) -> None:
        """Closes whatever is still open, without letting a failure here hide the transcript."""
        for client in (self.user, self.watcher):
            if client.is_open:
                try:
                    await client.close()
                except (ProtocolFailure, asyncio.TimeoutError, websockets.WebSocketException, OSError):
                    await client.abort()


def check(condition: Any, failure: str) -> None:
    if not condition:
        raise ProtocolFailure(failure)


async def run(args: argparse.Namespace) -> int:
    scenario = Scenario(args.url, args.token, args.watcher_token, args.group)
    try:
        for number, (title, step) in enumerate(scenario.steps(), 1):
            try:
                line = await step()
            except ProtocolFailure as failure:
                reason = str(failure)
            except asyncio.TimeoutError:
                reason = "timed out"
            # A refused upgrade (InvalidStatusCode), a connection that closed mid-send, a refused TCP connection.
            except (websockets.WebSocketException, OSError) as error:
                reason = f"{type(error).__name__}: {error}"
            else:
                print(f"step {number} ok: {line}", flush=True)
                continue
            print(f"step {number} FAILED ({title}): {reason}", flush=True)
            return 1
        return 0
    finally:
        await scenario.end()


def main() -> int:
    parser = argparse.ArgumentParser(description="Plays gateway-strategy protocol v1 against a gateway and prints a transcript.")
    parser.add_argument("--url", required=True, help="the gateway's WebSocket URL, e.g. ws://127.0.0.1:4100/rt")
    parser.add_argument("--token", required=True, help="JWT of the user the scenario drives")
    parser.add_argument("--watcher-token", required=True, help="JWT of a second member of the group, who watches")
    parser.add_argument("--group", default="group-1", help="a group both tokens grant (default: group-1)")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
