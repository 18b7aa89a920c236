import {
  compileGlob,
  NO_PARAMS,
  RouteTable,
  type BindingConfig,
  type ConditionMatcher,
  type Pattern,
} from '../../config/index.ts';

/** One `when` entry of a kafka binding's routes (the schema's `kafkaRoutes`). */
export interface TopicCondition {
  readonly topic?: string;
}

/** Matches topic names against a condition's glob (`items-*`, `orders-v?`). */
export class TopicConditionMatcher implements ConditionMatcher<string> {
  readonly #topic: Pattern | undefined;

  constructor(condition: TopicCondition) {
    this.#topic = condition.topic === undefined ? undefined : compileGlob(condition.topic);
  }

  match(topic: string): Readonly<Record<string, string>> | undefined {
    return this.#topic === undefined || this.#topic.test(topic) ? NO_PARAMS : undefined;
  }
}

/** A kafka binding's routes, by topic. */
export function topicRoutes(
  binding: Pick<BindingConfig, 'name' | 'routes' | 'exit'>,
): RouteTable<string, TopicCondition> {
  return new RouteTable(binding, (condition: TopicCondition) => new TopicConditionMatcher(condition));
}
