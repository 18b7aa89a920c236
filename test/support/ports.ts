import { connect } from 'node:net';
import { reservePorts } from '../../src/embedded/kafka/ports.ts';

/**
 * A loopback port for a listener the test cannot open on port 0 itself (a kgate child process, a
 * port written into a config, one that must stay the same across a restart). It stays reserved for
 * this test process until it exits, so it is never handed to another test file in between, and a
 * check that nothing listens on it any more cannot be fooled by someone else's listener.
 */
export async function reservePort(): Promise<number> {
  const [port] = (await reservePorts(1)).ports;
  if (port === undefined) throw new Error('no port reserved');
  return port;
}

/** `count` ports that follow each other, for a port range in a config, reserved like reservePort()'s. */
export async function reserveConsecutivePorts(count: number): Promise<number[]> {
  return [...(await reservePorts(count, { consecutive: true })).ports];
}

/** The error code of connecting to a loopback port (ECONNREFUSED: nothing listens), undefined if it connects. */
export function connectError(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code));
  });
}
