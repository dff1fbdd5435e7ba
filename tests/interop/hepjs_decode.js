// Decode a stream of HEP3 packets (back to back, as `heptool encode` writes them) with hep-js.
//
//   node hepjs_decode.js PATH/TO/node_modules/hep-js < packets.hep
//
// Prints one JSON line per packet: what hep-js `decapsulate()` returns (false when it gives
// up), plus `_len`, the packet's length. Framing uses the HEP3 length field at offset 4.
"use strict";
const hep = require(process.argv[2] || "hep-js");

const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", () => {
  const data = Buffer.concat(chunks);
  let off = 0;
  const out = [];
  while (off + 6 <= data.length) {
    const len = data.readUInt16BE(off + 4);
    if (len < 6 || off + len > data.length) {
      out.push(JSON.stringify({ _error: `bad framing at byte ${off}` }));
      break;
    }
    const decoded = hep.decapsulate(data.subarray(off, off + len));
    out.push(JSON.stringify(decoded === false ? { _false: true, _len: len } : { ...decoded, _len: len }));
    off += len;
  }
  process.stdout.write(out.join("\n") + (out.length ? "\n" : ""));
});
