// A HEP collector made of hep-js: UDP and TCP on 127.0.0.1, free ports.
//
//   node hepjs_listen.js PATH/TO/node_modules/hep-js
//
// Prints "ports UDP TCP" once both are bound, then one JSON line per packet: what hep-js
// `decapsulate()` returns, plus `_t` (udp/tcp). TCP is framed by the HEP3 length at offset 4.
"use strict";
const hep = require(process.argv[2] || "hep-js");
const dgram = require("dgram");
const net = require("net");

function out(transport, packet) {
  const d = hep.decapsulate(packet);
  process.stdout.write(JSON.stringify(d === false ? { _t: transport, _false: true } : { _t: transport, ...d }) + "\n");
}

const udp = dgram.createSocket("udp4");
udp.on("message", (msg) => out("udp", msg));
const tcp = net.createServer((conn) => {
  let buf = Buffer.alloc(0);
  conn.on("data", (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 6) {
      const len = buf.readUInt16BE(4);
      if (len < 6) { conn.destroy(); return; }
      if (buf.length < len) break;
      out("tcp", buf.subarray(0, len));
      buf = buf.subarray(len);
    }
  });
  conn.on("end", () => conn.end());
  conn.on("error", () => {});
});
let bound = 0;
function ready() {
  if (++bound === 2) {
    process.stdout.write(`ports ${udp.address().port} ${tcp.address().port}\n`);
  }
}
udp.bind(0, "127.0.0.1", ready);
tcp.listen(0, "127.0.0.1", ready);
process.on("SIGTERM", () => process.exit(0));
