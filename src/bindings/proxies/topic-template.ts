import type { Authorization } from '../../guards/index.ts';
import { HttpError } from '../north.ts';
import { checkTemplate, expand, paramsLookup } from './templates.ts';

/**
 * A route's `topic` with its `${params.<name>}` filled in per request. A name a request makes is
 * checked against Kafka's rules before anything is asked of a broker: an illegal one is answered
 * 404 at once (what Zilla answers for a request it cannot route), where sending it would earn an
 * INVALID_TOPIC_EXCEPTION, and the name never reaches the cache, so nothing retries it.
 */

/** Kafka's rules for a topic name (org.apache.kafka.common.internals.Topic#validate). */
const LEGAL_TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;

export function isLegalTopicName(name: string): boolean {
  return LEGAL_TOPIC.test(name) && name !== '.' && name !== '..';
}

/** Why `name` is not a legal topic name, or undefined when it is. */
export function topicNameProblem(name: string): string | undefined {
  if (name === '') return 'a topic name is not empty';
  if (name.length > 249) return 'a topic name is at most 249 characters';
  if (name === '.' || name === '..') return `"${name}" is not a topic name`;
  if (!LEGAL_TOPIC.test(name)) return 'a topic name holds only letters, digits, ".", "_" and "-"';
  return undefined;
}

export class TopicNameError extends HttpError {
  constructor(message: string) {
    super('KGATE_TOPIC_NAME_INVALID', message);
  }
}

export interface TopicTemplate {
  /** The template as configured. */
  readonly template: string;
  /** Whether requests fill it in (it uses `${params.*}` or `${guarded[...]}`). */
  readonly templated: boolean;
  /**
   * The topic of a request with these path parameters and this session; throws a TopicNameError
   * for an illegal one.
   */
  resolve(params: Readonly<Record<string, string>>, authorization?: Authorization): string;
}

/**
 * Compiles a route's `topic`; throws naming `where` when the template uses anything but the
 * route's path parameters, or when a topic without them is not a legal name.
 */
export function compileTopic(template: string, where: string, params: ReadonlySet<string>): TopicTemplate {
  checkTemplate(template, where, params, []);
  if (!template.includes('${')) {
    const problem = topicNameProblem(template);
    if (problem !== undefined)
      throw new Error(`${where}: "${template}" is not a legal topic name: ${problem}`);
    return { template, templated: false, resolve: () => template };
  }
  return {
    template,
    templated: true,
    resolve: (values, authorization) => {
      const topic = expand(template, paramsLookup(values, {}, authorization));
      const problem = topicNameProblem(topic);
      // The name is the client's: it is not echoed, since it may be anything up to a path's length.
      if (problem !== undefined) throw new TopicNameError(`this path names no topic: ${problem}`);
      return topic;
    },
  };
}
