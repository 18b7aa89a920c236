import type { BindingConfig } from '../../config/index.ts';
import type { Binding, BindingContext } from '../../engine/binding.ts';

/**
 * The `tls client` binding opens no connection of its own: the `kafka client` in front reads the
 * trust, sni and key options from `config` and applies them to each broker connection it opens.
 */
export class TlsClientBinding implements Binding {
  readonly name: string;
  readonly config: BindingConfig;

  constructor(context: BindingContext) {
    this.config = context.config;
    this.name = context.config.name;
  }

  async start(_signal: AbortSignal): Promise<void> {}

  async stop(_signal: AbortSignal): Promise<void> {}
}

export function createTlsClientBinding(context: BindingContext): Binding {
  return new TlsClientBinding(context);
}
