import { strict as assert } from 'node:assert';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { prometheusName, ZILLA_METRICS } from '../../src/config/index.ts';
import { requestBytes, responseBytes } from '../../src/bindings/http/zilla-metrics.ts';
import type { ZillaMetricName } from '../../src/config/index.ts';
import {
  bucketOf,
  HISTOGRAM_BUCKETS,
  ZillaMetrics,
  type BindingSeries,
  type Log2Histogram,
  type Scalar,
} from '../../src/telemetry/zilla-metrics.ts';

const ALL = { has: () => true };

function scalar(series: BindingSeries, name: ZillaMetricName): Scalar {
  const found = series.scalar(name);
  assert.ok(found !== undefined, name);
  return found;
}

function histogram(series: BindingSeries, name: ZillaMetricName): Log2Histogram {
  const found = series.histogram(name);
  assert.ok(found !== undefined, name);
  return found;
}

describe('Zilla metric names in Prometheus', () => {
  it("names each series as Zilla's prometheus exporter does", () => {
    assert.deepEqual(
      Object.fromEntries(ZILLA_METRICS.map((metric) => [metric.name, prometheusName(metric)])),
      {
        'http.request.size': 'http_request_size_bytes',
        'http.response.size': 'http_response_size_bytes',
        'http.active.requests': 'http_active_requests',
        'http.duration': 'http_duration_milliseconds',
        'stream.active.received': 'stream_active_received',
        'stream.active.sent': 'stream_active_sent',
        'stream.opens.received': 'stream_opens_received_total',
        'stream.opens.sent': 'stream_opens_sent_total',
        'stream.data.received': 'stream_data_received_bytes_total',
        'stream.data.sent': 'stream_data_sent_bytes_total',
        'stream.errors.received': 'stream_errors_received_total',
        'stream.errors.sent': 'stream_errors_sent_total',
        'stream.closes.received': 'stream_closes_received_total',
        'stream.closes.sent': 'stream_closes_sent_total',
      },
    );
  });

  it('puts a value in the bucket of its highest bit, as Zilla does', () => {
    assert.deepEqual(
      [0, 0.5, 1, 1.99, 2, 3, 4, 1023, 1024, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 1, 2 ** 70].map(bucketOf),
      [0, 0, 0, 0, 1, 1, 2, 9, 10, 31, 32, 40, 62],
    );
  });

  it('writes counters, gauges and histograms with namespace and binding labels, once per family', () => {
    const metrics = new ZillaMetrics();
    const north = metrics.attach('north_http_server', ['http.request.size', 'stream.opens.received']);
    const tcp = metrics.attach('north_tcp_server', ['stream.opens.received', 'stream.active.received']);
    scalar(north, 'stream.opens.received').value = 3;
    scalar(tcp, 'stream.opens.received').value = 2;
    scalar(tcp, 'stream.active.received').value = 1;
    const size = histogram(north, 'http.request.size');
    size.observe(0);
    size.observe(5);
    size.observe(5);
    const text = metrics.render('example', ALL);
    const lines = text.split('\n');
    assert.deepEqual(lines.slice(0, 3), [
      '# HELP http_request_size_bytes HTTP request content length',
      '# TYPE http_request_size_bytes histogram',
      'http_request_size_bytes_bucket{le="2",namespace="example",binding="north_http_server"} 1',
    ]);
    assert.equal(
      lines[3],
      'http_request_size_bytes_bucket{le="4",namespace="example",binding="north_http_server"} 1',
    );
    assert.equal(
      lines[4],
      'http_request_size_bytes_bucket{le="8",namespace="example",binding="north_http_server"} 3',
    );
    assert.equal(
      lines[2 + HISTOGRAM_BUCKETS - 2],
      'http_request_size_bytes_bucket{le="4611686018427387904",namespace="example",binding="north_http_server"} 3',
    );
    assert.equal(
      lines[2 + HISTOGRAM_BUCKETS - 1],
      'http_request_size_bytes_bucket{le="+Inf",namespace="example",binding="north_http_server"} 3',
    );
    assert.deepEqual(lines.slice(2 + HISTOGRAM_BUCKETS), [
      'http_request_size_bytes_sum{namespace="example",binding="north_http_server"} 10',
      'http_request_size_bytes_count{namespace="example",binding="north_http_server"} 3',
      '',
      '# HELP stream_active_received Number of currently active received streams',
      '# TYPE stream_active_received gauge',
      'stream_active_received{namespace="example",binding="north_tcp_server"} 1',
      '',
      '# HELP stream_opens_received_total Number of opened received streams',
      '# TYPE stream_opens_received_total counter',
      'stream_opens_received_total{namespace="example",binding="north_http_server"} 3',
      'stream_opens_received_total{namespace="example",binding="north_tcp_server"} 2',
      '',
    ]);
  });

  it('keeps counting across a restart with the same selection and hides bindings no longer configured', () => {
    const metrics = new ZillaMetrics();
    const first = metrics.attach('north', ['stream.opens.received']);
    scalar(first, 'stream.opens.received').value = 4;
    assert.equal(metrics.attach('north', ['stream.opens.received']), first);
    const changed = metrics.attach('north', ['stream.opens.received', 'stream.opens.sent']);
    assert.notEqual(changed, first);
    assert.equal(scalar(changed, 'stream.opens.received').value, 0);
    assert.equal(metrics.render('example', { has: () => false }), '');
    assert.equal(new ZillaMetrics().render('example', ALL), '');
  });
});

describe('http sizes as Zilla takes them', () => {
  function request(method: string, headers: Record<string, string>): IncomingMessage {
    const req = new IncomingMessage(new Socket());
    req.method = method;
    req.httpVersionMajor = 1;
    req.headers = headers;
    return req;
  }

  it('reads a request body size from Content-Length, 0 without a body, nothing for a chunked one', () => {
    assert.equal(requestBytes(request('PUT', { 'content-length': '123' })), 123);
    assert.equal(requestBytes(request('GET', {})), 0);
    assert.equal(requestBytes(request('POST', { 'transfer-encoding': 'chunked' })), undefined);
    assert.equal(requestBytes(request('POST', { 'content-length': 'x' })), undefined);
  });

  it('reads a response body size from Content-Length, 0 for HEAD, 204 and 304, nothing for a stream', () => {
    const get = request('GET', {});
    const sized = new ServerResponse(get);
    sized.setHeader('content-length', '42');
    assert.equal(responseBytes(get, sized), 42);
    const stream = new ServerResponse(get);
    assert.equal(responseBytes(get, stream), undefined);
    stream.statusCode = 304;
    assert.equal(responseBytes(get, stream), 0);
    const head = request('HEAD', {});
    assert.equal(responseBytes(head, new ServerResponse(head)), 0);
  });
});
