// Reference for bpe_tokenizer_test: encodes with the npm gpt-3-encoder package.
// usage: node reference_encoder.js NODE_MODULES_DIR < strings.jsonl > ids.jsonl
// Each input line is one JSON string; each output line the JSON array of its token ids.
const path = require('path');
const readline = require('readline');
const { encode } = require(path.join(process.argv[2], 'gpt-3-encoder'));

const out = [];
readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  .on('line', line => { if (line.length > 0) out.push(JSON.stringify(encode(JSON.parse(line)))); })
  .on('close', () => { process.stdout.write(out.join('\n') + '\n'); });
