// Interop scenarios with MQTT.js (the `mqtt` npm package) against a running broker.
//
// Usage: node mqttjs_interop.mjs TCP_URL WS_URL WSS_URL CA_FILE
// For MQTT 3.1.1 and 5, a subscriber on each transport receives what publishers on the other
// transports send. Prints "PASS name" / "FAIL name: reason"; exits non-zero if any failed.
// Every wait has a deadline.

import fs from "node:fs";
import mqtt from "mqtt";

const [tcpUrl, wsUrl, wssUrl, caFile] = process.argv.slice(2);
const ca = fs.readFileSync(caFile);
const WAIT_MS = 10_000;
const run = Math.random().toString(16).slice(2, 10);

function withDeadline(promise, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), WAIT_MS);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

async function connect(url, id, protocolVersion) {
  const options = { clientId: `js-${run}-${id}`, protocolVersion, reconnectPeriod: 0, ca };
  return withDeadline(mqtt.connectAsync(url, options), `connect ${url}`);
}

const transports = { tcp: tcpUrl, ws: wsUrl, wss: wssUrl };
let failed = false;

for (const version of [4, 5]) {
  for (const [subName, subUrl] of Object.entries(transports)) {
    const name = `v${version === 4 ? "311" : "5"}-sub-on-${subName}`;
    const clients = [];
    try {
      const sub = await connect(subUrl, `${name}-sub`, version);
      clients.push(sub);
      const topic = `js/${run}/${name}`;
      await withDeadline(sub.subscribeAsync(`${topic}/#`, { qos: 1 }), "subscribe");
      const received = [];
      const all = new Promise((resolve) => {
        sub.on("message", (t, payload) => {
          received.push(`${t}=${payload.toString()}`);
          if (received.length === Object.keys(transports).length) resolve();
        });
      });
      for (const [pubName, pubUrl] of Object.entries(transports)) {
        const pub = await connect(pubUrl, `${name}-pub-${pubName}`, version);
        clients.push(pub);
        await withDeadline(pub.publishAsync(`${topic}/${pubName}`, `from-${pubName}`, { qos: 1 }), "publish");
      }
      await withDeadline(all, "messages");
      received.sort();
      const expected = Object.keys(transports).map((p) => `${topic}/${p}=from-${p}`).sort();
      if (JSON.stringify(received) !== JSON.stringify(expected)) {
        throw new Error(`got ${JSON.stringify(received)}`);
      }
      console.log(`PASS ${name}`);
    } catch (e) {
      failed = true;
      console.log(`FAIL ${name}: ${e.message}`);
    } finally {
      await Promise.all(clients.map((c) => c.endAsync().catch(() => {})));
    }
  }
}
process.exit(failed ? 1 : 0);
