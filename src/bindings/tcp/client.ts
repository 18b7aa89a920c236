import type { BindingConfig } from '../../config/index.ts';
import type { Binding, BindingContext } from '../../engine/binding.ts';

/**
 * The `tcp client` and `tls client` bindings open no connection of their own: the `kafka client`
 * in front reads host and port (tcp) or trust, sni and key options (tls) from `config` and applies
 * them to each broker connection it opens, since broker addresses come from metadata.
 */
export class TransportClientBinding implements Binding {
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
  return new TransportClientBinding(context);
}
