import type { BindingConfig } from '../../config/index.ts';
import type { Binding, BindingContext } from '../../engine/binding.ts';

/**
 * The `tcp client` binding opens no connection of its own: the `kafka client` in front reads host
 * and port from `config` and dials the brokers itself, since broker addresses come from metadata.
 */
export class TcpClientBinding implements Binding {
  readonly name: string;
  readonly config: BindingConfig;

  constructor(context: BindingContext) {
    this.config = context.config;
    this.name = context.config.name;
  }

  async start(_signal: AbortSignal): Promise<void> {}

  async stop(_signal: AbortSignal): Promise<void> {}
}

export function createTcpClientBinding(context: BindingContext): Binding {
  return new TcpClientBinding(context);
}
