import type { Binding, BindingContext } from '../../engine/binding.ts';
import { TransportClientBinding } from '../tcp/client.ts';

export function createTlsClientBinding(context: BindingContext): Binding {
  return new TransportClientBinding(context);
}
