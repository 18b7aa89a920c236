import type { CachedTopic, TopicChange } from './api.ts';

type Listener = (change: TopicChange) => void;

/**
 * `onChange` and `release` of one CachedTopic handle, over the listeners every handle of the
 * topic shares: releasing the handle drops its own listeners, once, then calls `onRelease`.
 */
export function handleListeners(
  all: Set<Listener>,
  onRelease: () => void,
): Pick<CachedTopic, 'onChange' | 'release'> {
  const mine = new Set<Listener>();
  let released = false;
  return {
    onChange(listener) {
      mine.add(listener);
      all.add(listener);
      return () => {
        mine.delete(listener);
        all.delete(listener);
      };
    },
    release() {
      if (released) return;
      released = true;
      for (const listener of mine) all.delete(listener);
      mine.clear();
      onRelease();
    },
  };
}
