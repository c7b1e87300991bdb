#!/usr/bin/env python3
"""Interop scenarios with the Eclipse Paho Python client (paho-mqtt 2.x) against a running broker.

Usage: paho_interop.py HOST PORT VERSION [TRANSPORT [PATH]]
  VERSION: 311 or 5; TRANSPORT: tcp (default) or websockets.

Prints one line per scenario ("PASS name" or "FAIL name: reason") and exits non-zero if any failed.
Every wait has a deadline; nothing sleeps for a fixed time.
"""

import queue
import sys
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

HOST, PORT, VERSION = sys.argv[1], int(sys.argv[2]), sys.argv[3]
TRANSPORT = sys.argv[4] if len(sys.argv) > 4 else "tcp"
WS_PATH = sys.argv[5] if len(sys.argv) > 5 else "/mqtt"
V5 = VERSION == "5"
WAIT = 10
RUN = uuid.uuid4().hex[:8]


class Client:
    """A paho client whose callbacks feed queues."""

    def __init__(self, name, clean=True, will=None, expiry=None):
        self.id = f"paho-{RUN}-{name}"
        self.messages = queue.Queue()
        self.acks = queue.Queue()
        self.c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.id,
            protocol=mqtt.MQTTv5 if V5 else mqtt.MQTTv311,
            clean_session=None if V5 else clean,
            transport=TRANSPORT,
        )
        if TRANSPORT == "websockets":
            self.c.ws_set_options(path=WS_PATH)
        self.c.on_connect = lambda c, u, f, rc, p: self.acks.put(("connack", f.session_present, rc))
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.acks.put(("suback", mid, rcs))
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.clean = clean
        self.expiry = expiry
        if will:
            topic, payload, props = will
            self.c.will_set(topic, payload, qos=1, properties=props)

    def connect(self):
        props = None
        if V5:
            props = Properties(PacketTypes.CONNECT)
            if self.expiry is not None:
                props.SessionExpiryInterval = self.expiry
        if V5:
            self.c.connect(HOST, PORT, keepalive=30, clean_start=self.clean, properties=props)
        else:
            self.c.connect(HOST, PORT, keepalive=30)
        self.c.loop_start()
        kind, present, rc = self.acks.get(timeout=WAIT)
        assert kind == "connack" and not rc.is_failure, f"connect refused: {rc}"
        return present

    def subscribe(self, topic, qos):
        self.c.subscribe(topic, qos)
        kind, _, rcs = self.acks.get(timeout=WAIT)
        assert kind == "suback", kind
        assert not rcs[0].is_failure, f"subscription refused: {rcs[0]}"

    def message(self):
        return self.messages.get(timeout=WAIT)

    def publish(self, topic, payload, qos=0, retain=False):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=WAIT)
        assert info.is_published(), f"publish to {topic} not acknowledged"

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()

    def crash(self):
        """Ends the connection without DISCONNECT."""
        self.c.loop_stop()
        self.c.socket().close()


def roundtrip():
    sub, pub = Client("rt-sub"), Client("rt-pub")
    sub.connect()
    sub.subscribe(f"rt/{RUN}/#", 2)
    pub.connect()
    for qos in (0, 1, 2):
        pub.publish(f"rt/{RUN}/q{qos}", f"m{qos}".encode(), qos)
        m = sub.message()
        assert m.topic == f"rt/{RUN}/q{qos}" and m.payload == f"m{qos}".encode() and m.qos == qos, (
            m.topic, m.payload, m.qos)
    sub.close()
    pub.close()


def retained():
    pub = Client("ret-pub")
    pub.connect()
    pub.publish(f"ret/{RUN}", b"kept", 1, retain=True)
    sub = Client("ret-sub")
    sub.connect()
    sub.subscribe(f"ret/{RUN}", 1)
    m = sub.message()
    assert m.payload == b"kept" and m.retain, (m.payload, m.retain)
    pub.publish(f"ret/{RUN}", b"", 1, retain=True)
    sub.close()
    pub.close()


def will():
    watcher = Client("will-watch")
    watcher.connect()
    watcher.subscribe(f"will/{RUN}", 1)
    props = None
    if V5:
        props = Properties(PacketTypes.WILLMESSAGE)
        props.WillDelayInterval = 1
    dying = Client("will-dying", clean=True, will=(f"will/{RUN}", b"gone", props), expiry=60 if V5 else None)
    dying.connect()
    dying.crash()
    m = watcher.message()
    assert m.payload == b"gone", m.payload
    watcher.close()


def persistent_session():
    first = Client("persist", clean=False, expiry=300)
    first.connect()
    first.subscribe(f"persist/{RUN}", 1)
    first.close()
    pub = Client("persist-pub")
    pub.connect()
    for i in range(3):
        pub.publish(f"persist/{RUN}", f"q{i}".encode(), 1)
    second = Client("persist", clean=False, expiry=300)
    present = second.connect()
    assert present, "session present expected"
    got = [second.message().payload for _ in range(3)]
    assert got == [b"q0", b"q1", b"q2"], got
    second.close()
    pub.close()


def shared():
    members = [Client(f"shared-{i}") for i in range(2)]
    for m in members:
        m.connect()
        m.subscribe(f"$share/g{RUN}/jobs/{RUN}", 1)
    pub = Client("shared-pub")
    pub.connect()
    for i in range(6):
        pub.publish(f"jobs/{RUN}", f"j{i}".encode(), 1)
    # Both members' callbacks feed their own queues; poll both until six messages arrived.
    got = {0: [], 1: []}
    deadline = time.monotonic() + WAIT
    while len(got[0]) + len(got[1]) < 6:
        assert time.monotonic() < deadline, f"only {got} arrived"
        for idx, m in enumerate(members):
            try:
                got[idx].append(m.messages.get(timeout=0.05).payload)
            except queue.Empty:
                pass
    assert sorted(got[0] + got[1]) == sorted(f"j{i}".encode() for i in range(6)), got
    assert got[0] and got[1], f"both members get messages: {got}"
    for m in members:
        m.close()
    pub.close()


SCENARIOS = [roundtrip, retained, will, persistent_session, shared]

failed = False
for scenario in SCENARIOS:
    try:
        scenario()
        print(f"PASS {scenario.__name__}", flush=True)
    except Exception as e:  # noqa: BLE001 - report every failure, keep going
        failed = True
        print(f"FAIL {scenario.__name__}: {type(e).__name__}: {e}", flush=True)
sys.exit(1 if failed else 0)
