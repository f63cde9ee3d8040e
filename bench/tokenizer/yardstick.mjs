// The yardstick for `troupe bench tokenizer`: loads a tokenizer.json with @lenml/tokenizers (a
// JavaScript port of the Hugging Face tokenizers pipeline), encodes the bench text, and prints one
// JSON line: {"load_ms", "encode_seconds": [per repeat], "bytes", "ids"}. The ids of the first
// pass are written as little-endian int32 to --ids-out so troupe can compare them with its own.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TokenizerLoader } from "@lenml/tokenizers";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith("--") ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []));
for (const required of ["tokenizer", "text", "ids-out"]) {
  if (!args[required]) { console.error(`usage: yardstick.mjs --tokenizer DIR --text FILE --ids-out FILE [--repeat N]`); process.exit(2); }
}
const repeat = Number(args.repeat ?? 3);

const loadStart = performance.now();
const tokenizerJSON = JSON.parse(readFileSync(join(args.tokenizer, "tokenizer.json"), "utf8"));
let tokenizerConfig = {};
try { tokenizerConfig = JSON.parse(readFileSync(join(args.tokenizer, "tokenizer_config.json"), "utf8")); } catch {}
const tokenizer = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
const loadMs = performance.now() - loadStart;

const text = readFileSync(args.text, "utf8");
const encodeSeconds = [];
let firstIds = null;
for (let i = 0; i < repeat; ++i) {
  const start = performance.now();
  const ids = tokenizer.encode(text, { add_special_tokens: false });
  encodeSeconds.push((performance.now() - start) / 1000);
  if (!firstIds) firstIds = ids;
}
writeFileSync(args["ids-out"], Buffer.from(Int32Array.from(firstIds).buffer));
console.log(JSON.stringify({ load_ms: loadMs, encode_seconds: encodeSeconds, bytes: Buffer.byteLength(text, "utf8"), ids: firstIds.length }));
