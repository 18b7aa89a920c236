import { duplexPair, type Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { BindingConfig } from '../../config/index.ts';
import type { Binding, BindingContext } from '../../engine/binding.ts';
import {
  isStreamHandler,
  lookupExits,
  type ConnectionHandler,
  type ConnectionInfo,
  type StreamHandler,
} from '../north.ts';
import { fanServerOptions, type FanServerLimits } from './options.ts';

/**
 * The `fan server` binding, as Zilla's: the clients it takes are members of one group, whose
 * stream to the exit carries what every member writes, and what comes back on it goes to every
 * member. The group's stream opens with its first member and ends with its last.
 */
export class FanServerBinding implements Binding, ConnectionHandler, StreamHandler {
  readonly name: string;
  readonly config: BindingConfig;
  readonly #context: BindingContext;
  readonly #log: Logger;
  readonly #limits: FanServerLimits;
  readonly #members = new Set<Duplex>();
  #exit: StreamHandler | undefined;
  /** The fan's end of the group's stream; the exit holds the other. */
  #group: Duplex | undefined;
  #draining = false;

  constructor(context: BindingContext) {
    this.#context = context;
    this.config = context.config;
    this.name = context.config.name;
    this.#log = context.logger;
    this.#limits = fanServerOptions(context.config.options);
  }

  async start(_signal: AbortSignal): Promise<void> {
    const exits = lookupExits(this.#context, isStreamHandler, 'accept the stream of a fan');
    this.#exit = [...exits.values()][0];
    this.#draining = false;
  }

  acceptConnection(socket: Duplex, info: ConnectionInfo): void {
    this.acceptStream(socket, info);
  }

  acceptStream(member: Duplex, info: ConnectionInfo): void {
    const group = this.#draining ? undefined : this.#join(info);
    if (group === undefined) {
      member.destroy();
      return;
    }
    this.#members.add(member);
    member.on('error', (error) => this.#log.debug({ err: error, ...info }, 'fan member failed'));
    member.once('close', () => this.#leave(member));
    member.on('data', (chunk: Buffer) => {
      // The group takes what members send at the pace its exit reads it.
      if (!group.write(chunk)) {
        member.pause();
        group.once('drain', () => member.resume());
      }
    });
  }

  /** The group's stream, opened to the exit for the first member. */
  #join(info: ConnectionInfo): Duplex | undefined {
    if (this.#group !== undefined) return this.#group;
    const exit = this.#exit;
    if (exit === undefined) return undefined;
    const [ours, theirs] = duplexPair();
    this.#group = ours;
    ours.on('data', (chunk: Buffer) => this.#broadcast(chunk));
    ours.on('error', (error) => this.#log.debug({ err: error }, 'fan group stream failed'));
    // The exit ended the group: so are its members.
    ours.once('end', () => {
      if (this.#group === ours) this.#group = undefined;
      for (const member of this.#members) member.end();
    });
    exit.acceptStream(theirs, info);
    return ours;
  }

  #broadcast(chunk: Buffer): void {
    for (const member of this.#members) {
      if (member.writableLength > this.#limits.maxQueuedBytes) {
        this.#log.warn(
          { queued: member.writableLength },
          'fan member does not read what it is sent; closing it',
        );
        this.#members.delete(member);
        member.destroy();
        continue;
      }
      member.write(chunk);
    }
  }

  #leave(member: Duplex): void {
    if (!this.#members.delete(member) || this.#members.size > 0) return;
    const group = this.#group;
    this.#group = undefined;
    group?.end();
  }

  drain(): void {
    this.#draining = true;
    for (const member of this.#members) member.end();
    this.#group?.end();
    this.#exit?.drain?.();
  }

  async stop(_signal: AbortSignal): Promise<void> {
    this.drain();
    for (const member of this.#members) member.destroy();
    this.#members.clear();
    this.#group?.destroy();
    this.#group = undefined;
  }
}

export function createFanServerBinding(context: BindingContext): Binding {
  return new FanServerBinding(context);
}
