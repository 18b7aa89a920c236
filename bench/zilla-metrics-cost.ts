// What counting Zilla's http and stream metrics adds to one HTTP request, in process:
//   node bench/zilla-metrics-cost.ts [--requests 5000000] [--rounds 5]
// Each round calls an http server's begin and end of an exchange `requests` times with every
// metric selected (14 instruments: three histograms, the rest counters and gauges) and prints
// the time per request. The request and response are built once; nothing else runs.

import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { HttpExchangeMetrics } from '../src/bindings/http/zilla-metrics.ts';
import { ZILLA_METRICS } from '../src/config/index.ts';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '5000000' },
    rounds: { type: 'string', default: '5' },
  },
});
const requests = Number(args.requests);
const rounds = Number(args.rounds);

const req = new IncomingMessage(new Socket());
req.method = 'GET';
req.httpVersionMajor = 1;
req.headers = {};
req.complete = true;
const res = new ServerResponse(req);
res.setHeader('content-length', '187');
res.end();
const metrics = HttpExchangeMetrics.of(new Registry(), {
  name: 'north_http',
  type: 'http',
  kind: 'server',
  options: {},
  routes: [],
  metrics: ZILLA_METRICS.map((metric) => metric.name),
});
if (metrics === undefined) throw new Error('no metric selected');

for (let round = 1; round <= rounds; round++) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < requests; i++) {
    metrics.begin();
    metrics.end(req, res, 3.7);
  }
  const ns = Number(process.hrtime.bigint() - started) / requests;
  console.log(`round ${round}: ${ns.toFixed(1)} ns per request (begin and end, 14 metrics)`);
}
